import GateCore
import Testing

@Suite("Backend health")
struct BackendHealthTests {
    private let t0 = MonotonicInstant(nanoseconds: 1_000_000_000)

    @Test("fall failed checks take it down, rise passing checks bring it back with a slow start")
    func activeChecks() {
        var health = BackendHealth(configuration: .init(rise: 2, fall: 3, slowStart: .seconds(10)))
        #expect(health.effectiveWeight(4, at: self.t0) == 400)
        #expect(health.recordCheck(passed: false, at: self.t0) == nil)
        #expect(health.recordCheck(passed: false, at: self.t0) == nil)
        // A pass in between resets the count.
        #expect(health.recordCheck(passed: true, at: self.t0) == nil)
        #expect(health.recordCheck(passed: false, at: self.t0) == nil)
        #expect(health.recordCheck(passed: false, at: self.t0) == nil)
        #expect(health.recordCheck(passed: false, at: self.t0) == .wentDown)
        #expect(health.phase(at: self.t0) == .down)
        #expect(health.effectiveWeight(4, at: self.t0) == 0)

        #expect(health.recordCheck(passed: true, at: self.t0) == nil)
        #expect(health.recordCheck(passed: false, at: self.t0) == nil)
        #expect(health.recordCheck(passed: true, at: self.t0) == nil)
        let back = self.t0 + .seconds(1)
        #expect(health.recordCheck(passed: true, at: back) == .cameBack)
        #expect(health.phase(at: back) == .serving(rampUntil: back + .seconds(10)))
        #expect(health.effectiveWeight(4, at: back) == 1, "the ramp starts at the least weight")
        #expect(health.effectiveWeight(4, at: back + .seconds(5)) == 200)
        #expect(health.effectiveWeight(4, at: back + .milliseconds(7_500)) == 300)
        #expect(health.effectiveWeight(4, at: back + .seconds(10)) == 400)
        #expect(health.phase(at: back + .seconds(10)) == .serving(rampUntil: nil))
    }

    @Test("failed requests in a row eject it; ejections in a row double, up to the cap; it returns by itself")
    func passiveEjection() {
        var health = BackendHealth(configuration: .init(
            ejectAfter: 3, ejection: .seconds(5), maximumEjection: .seconds(15), slowStart: .zero
        ))
        var now = self.t0
        func failThrice() -> BackendHealth.Transition? {
            _ = health.recordRequest(failed: true, at: now)
            _ = health.recordRequest(failed: true, at: now)
            return health.recordRequest(failed: true, at: now)
        }
        // A success in between resets the count.
        _ = health.recordRequest(failed: true, at: now)
        _ = health.recordRequest(failed: true, at: now)
        #expect(health.recordRequest(failed: false, at: now) == nil)
        #expect(failThrice() == .ejected(until: now + .seconds(5)))
        #expect(health.effectiveWeight(1, at: now + .seconds(4)) == 0)
        #expect(health.recordRequest(failed: true, at: now + .seconds(1)) == nil, "requests under way while ejected change nothing")
        now = now + .seconds(5)
        #expect(health.effectiveWeight(1, at: now) == 100, "back by itself when the time is up")
        #expect(failThrice() == .ejected(until: now + .seconds(10)))
        now = now + .seconds(10)
        #expect(failThrice() == .ejected(until: now + .seconds(15)))
        now = now + .seconds(15)
        #expect(failThrice() == .ejected(until: now + .seconds(15)), "capped")
        // Serving well for longer than the cap: the next ejection starts from the base again.
        now = now + .seconds(15) + .seconds(16)
        #expect(failThrice() == .ejected(until: now + .seconds(5)))
    }

    @Test("failures that may not eject (too many siblings out) leave it serving; the first failure allowed to eject does")
    func ejectionHeldBack() {
        var health = BackendHealth(configuration: .init(ejectAfter: 2, ejection: .seconds(5), slowStart: .zero))
        for _ in 0..<10 {
            #expect(health.recordRequest(failed: true, at: self.t0, mayEject: false) == nil)
        }
        #expect(health.phase(at: self.t0) == .serving(rampUntil: nil))
        #expect(health.effectiveWeight(1, at: self.t0) == 100)
        // Still failing once ejection is allowed again: the next failure ejects it.
        #expect(health.recordRequest(failed: true, at: self.t0, mayEject: true) == .ejected(until: self.t0 + .seconds(5)))
    }

    @Test("an ejected backend ramps up after it returns; a failed check streak takes it down even while ejected")
    func ejectionThenSlowStartAndChecks() {
        var health = BackendHealth(configuration: .init(fall: 2, ejectAfter: 1, ejection: .seconds(2), slowStart: .seconds(4)))
        guard case .ejected(let until) = health.recordRequest(failed: true, at: self.t0) else {
            Issue.record("one failure should eject with ejectAfter 1")
            return
        }
        #expect(health.effectiveWeight(2, at: until + .seconds(2)) == 100, "half-way through the ramp")
        _ = health.recordRequest(failed: true, at: until + .seconds(3))
        let second = until + .seconds(3)
        #expect(health.phase(at: second) == .ejected(until: second + .seconds(4)))
        #expect(health.recordCheck(passed: false, at: second) == nil)
        #expect(health.recordCheck(passed: false, at: second) == .wentDown)
        #expect(health.effectiveWeight(2, at: second + .seconds(60)) == 0, "down stays down until checks pass")
    }
}

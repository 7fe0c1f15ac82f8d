import GateCore
import Testing

/// The warm-up gate: nothing before the dependencies are warm, then a linear ramp.
@Suite struct WarmupGateTests {
    static let t0 = MonotonicInstant(nanoseconds: 5_000_000_000)
    static let warm = WarmupGate.Conditions(redisAnswers: true, scriptsLoaded: true, rulesCompiled: true, healthyBackends: 2)

    @Test func nothingIsAdmittedUntilRedisScriptsRulesAndBackendsAreWarm() {
        var gate = WarmupGate(.init(minimumHealthyBackends: 2, ramp: .seconds(30), usesRedis: true))
        #expect(gate.phase == .starting && gate.share(now: Self.t0) == 0)
        var conditions = WarmupGate.Conditions(rulesCompiled: true, healthyBackends: 2)
        #expect(gate.update(conditions, now: Self.t0) == .warming)
        #expect(gate.waitingFor(conditions) == "waiting for redis, redis scripts")
        conditions.redisAnswers = true
        conditions.scriptsLoaded = true
        conditions.healthyBackends = 1
        #expect(gate.update(conditions, now: Self.t0) == .warming)
        #expect(gate.waitingFor(conditions) == "waiting for 2 healthy backend(s), 1 so far")
        #expect(!gate.admits(draw: 0, now: Self.t0))
        #expect(gate.update(Self.warm, now: Self.t0) == .ramping)
    }

    @Test(arguments: [0, 5, 10, 15, 20, 25, 29])
    func theAdmittedShareFollowsTheRamp(second: Int) {
        var gate = WarmupGate(.init(initialShare: 0.1, ramp: .seconds(30)))
        gate.update(Self.warm, now: Self.t0)
        let now = Self.t0 + .seconds(second)
        gate.update(Self.warm, now: now)
        let expected = 0.1 + 0.9 * Double(second) / 30
        #expect(abs(gate.share(now: now) - expected) < 1e-9)
        // Of 10,000 evenly spread draws, the admitted share is the ramp's (±1%).
        let admitted = (0..<10_000).filter { gate.admits(draw: (Double($0) + 0.5) / 10_000, now: now) }.count
        #expect(abs(Double(admitted) / 10_000 - expected) < 0.01)
    }

    @Test func afterTheRampEverythingIsAdmittedAndLosingADependencyRewarms() {
        var gate = WarmupGate(.init(ramp: .seconds(30), usesRedis: true, rewarmOnRedisLoss: true))
        gate.update(Self.warm, now: Self.t0)
        #expect(gate.update(Self.warm, now: Self.t0 + .seconds(30)) == .ready)
        #expect(gate.share(now: Self.t0 + .seconds(31)) == 1)
        var lost = Self.warm
        lost.redisAnswers = false
        #expect(gate.update(lost, now: Self.t0 + .seconds(40)) == .warming)
        #expect(gate.share(now: Self.t0 + .seconds(40)) == 0)
        // Back: a new ramp from the initial share.
        #expect(gate.update(Self.warm, now: Self.t0 + .seconds(50)) == .ramping)
        #expect(gate.share(now: Self.t0 + .seconds(50)) == 0.1)
        var noBackends = Self.warm
        noBackends.healthyBackends = 0
        #expect(gate.update(noBackends, now: Self.t0 + .seconds(51)) == .warming)
    }

    @Test func rewarmingCanBeTurnedOffAndDrainingIsFinal() {
        var gate = WarmupGate(.init(ramp: .zero, usesRedis: true, rewarmOnRedisLoss: false))
        #expect(gate.update(Self.warm, now: Self.t0) == .ready)
        var lost = Self.warm
        lost.redisAnswers = false
        #expect(gate.update(lost, now: Self.t0 + .seconds(1)) == .ready)
        // Not waiting for Redis at all: ready while it is down.
        var lenient = WarmupGate(.init(usesRedis: true, waitForRedis: false))
        #expect(lenient.update(lost, now: Self.t0) == .ready)
        #expect(lenient.waitingFor(lost) == nil)
        var strict = WarmupGate(.init(usesRedis: true))
        #expect(strict.update(lost, now: Self.t0) == .warming)
        #expect(strict.waitingFor(lost) == "waiting for redis")
        // No gate at all.
        var off = WarmupGate(.off)
        #expect(off.update(WarmupGate.Conditions(rulesCompiled: true), now: Self.t0) == .ready)
        gate.drain()
        #expect(gate.update(Self.warm, now: Self.t0 + .seconds(2)) == .draining)
        #expect(gate.share(now: Self.t0 + .seconds(2)) == 0)
    }
}

import GateCore
import Testing

@Suite struct SoldOutLatchTests {
    static let t0 = MonotonicInstant(nanoseconds: 1_000_000_000)

    @Test func afterSellOutRequestsAreAnsweredLocallyWithOneProbePerInterval() {
        var latch = SoldOutLatch(recheck: .seconds(2))
        #expect(latch.decide(now: Self.t0) == .forward)
        latch.observedSoldOut(now: Self.t0)
        var decisions: [SoldOutLatch.Decision] = []
        // 10 requests a second for 5 seconds.
        for tenth in 0..<50 {
            decisions.append(latch.decide(now: Self.t0 + .milliseconds(100 * tenth)))
        }
        #expect(decisions.filter { $0 == .probe }.count == 2) // at 2 s and 4 s
        #expect(decisions.filter { $0 == .forward }.isEmpty)
        #expect(decisions[20] == .probe && decisions[40] == .probe)
        #expect(latch.answeredLocally == 48)
        // A second sold-out answer while latched changes nothing.
        latch.observedSoldOut(now: Self.t0 + .seconds(5))
        #expect(latch.decide(now: Self.t0 + .milliseconds(5_100)) == .soldOut)
    }

    @Test func aProbeRefusedBeforeTheBackendIsHandedToTheNextRequest() {
        var latch = SoldOutLatch(recheck: .seconds(10))
        latch.observedSoldOut(now: Self.t0)
        #expect(latch.decide(now: Self.t0 + .seconds(10)) == .probe)
        #expect(latch.decide(now: Self.t0 + .milliseconds(10_001)) == .soldOut)
        // The probe was challenged: the next request probes instead of waiting 10 s.
        latch.probeUnused(now: Self.t0 + .milliseconds(10_002))
        #expect(latch.decide(now: Self.t0 + .milliseconds(10_003)) == .probe)
        #expect(latch.decide(now: Self.t0 + .milliseconds(10_004)) == .soldOut)
        // Open, it has no probe to give back.
        latch.observedAvailable()
        latch.probeUnused(now: Self.t0 + .seconds(11))
        #expect(latch.state == .open)
    }

    @Test func aProbeThatSellsOpensTheLatch() {
        var latch = SoldOutLatch(recheck: .seconds(1))
        latch.observedSoldOut(now: Self.t0)
        #expect(latch.decide(now: Self.t0 + .milliseconds(500)) == .soldOut)
        #expect(latch.decide(now: Self.t0 + .seconds(1)) == .probe)
        latch.observedAvailable()
        #expect(latch.decide(now: Self.t0 + .milliseconds(1_001)) == .forward)
        #expect(latch.state == .open)
    }
}

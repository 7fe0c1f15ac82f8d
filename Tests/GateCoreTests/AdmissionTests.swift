import GateCore
import Testing

/// Admission control: the queue with deadlines and priorities, and the adaptive limit.
@Suite struct AdmissionTests {
    static let t0 = MonotonicInstant(nanoseconds: 1_000_000_000)

    @Test func requestsBeyondTheLimitWaitInOrderAndAreAdmittedAsSlotsFree() {
        var queue = AdmissionQueue<Int>(limit: 2, maximumQueue: 3)
        let deadline = Self.t0 + .seconds(5)
        let arrivals = (1...6).map { queue.arrive($0, priority: .normal, deadline: deadline, now: Self.t0) }
        #expect(arrivals == [.admitted, .admitted, .queued, .queued, .queued, .refused(.queueFull)])
        #expect(queue.inFlight == 2 && queue.queued == 3)
        let first = queue.finish(serviceTime: .milliseconds(50), now: Self.t0 + .milliseconds(50))
        #expect(first.admitted == [3] && first.timedOut.isEmpty)
        #expect(queue.inFlight == 2 && queue.queued == 2)
        let second = queue.finish(serviceTime: .milliseconds(50), now: Self.t0 + .milliseconds(60))
        #expect(second.admitted == [4])
    }

    @Test func aRequestThatWouldWaitPastItsDeadlineIsRefusedAtOnce() {
        var queue = AdmissionQueue<Int>(limit: 1, maximumQueue: 100)
        #expect(queue.arrive(1, priority: .normal, deadline: Self.t0 + .seconds(1), now: Self.t0) == .admitted)
        // One request took 100 ms: the service time is learnt.
        _ = queue.finish(serviceTime: .milliseconds(100), now: Self.t0 + .milliseconds(100))
        let now = Self.t0 + .milliseconds(100)
        #expect(queue.arrive(2, priority: .normal, deadline: now + .seconds(1), now: now) == .admitted)
        // 1 slot at ~100 ms each: the n-th waiter expects ~n × 100 ms.
        for ticket in 3...6 {
            #expect(queue.arrive(ticket, priority: .normal, deadline: now + .milliseconds(450), now: now) == .queued)
        }
        #expect(queue.arrive(7, priority: .normal, deadline: now + .milliseconds(450), now: now) == .refused(.wouldMissDeadline))
        // A later deadline still queues.
        #expect(queue.arrive(8, priority: .normal, deadline: now + .seconds(2), now: now) == .queued)
    }

    @Test func waitersPastTheirDeadlineAreRefusedAndNeverAdmitted() {
        var queue = AdmissionQueue<Int>(limit: 1, maximumQueue: 10)
        _ = queue.arrive(1, priority: .normal, deadline: Self.t0 + .seconds(9), now: Self.t0)
        _ = queue.arrive(2, priority: .normal, deadline: Self.t0 + .milliseconds(100), now: Self.t0)
        _ = queue.arrive(3, priority: .normal, deadline: Self.t0 + .seconds(9), now: Self.t0)
        let expired = queue.expire(now: Self.t0 + .milliseconds(200))
        #expect(expired.timedOut == [2] && expired.admitted.isEmpty)
        let next = queue.finish(serviceTime: nil, now: Self.t0 + .milliseconds(300))
        #expect(next.admitted == [3])
        #expect(queue.queued == 0)
    }

    @Test func paymentsAndPassHoldersGoFirst() {
        var queue = AdmissionQueue<String>(limit: 1, maximumQueue: 10)
        let deadline = Self.t0 + .seconds(10)
        #expect(queue.arrive("buy-1", priority: .normal, deadline: deadline, now: Self.t0) == .admitted)
        #expect(queue.arrive("buy-2", priority: .normal, deadline: deadline, now: Self.t0) == .queued)
        #expect(queue.arrive("pay-1", priority: .high, deadline: deadline, now: Self.t0) == .queued)
        #expect(queue.arrive("buy-3", priority: .normal, deadline: deadline, now: Self.t0) == .queued)
        let cancelled = queue.cancel("buy-3")
        let again = queue.cancel("buy-3")
        #expect(cancelled && !again)
        var order: [String] = []
        for step in 1...3 {
            order += queue.finish(serviceTime: .milliseconds(10), now: Self.t0 + .milliseconds(10 * step)).admitted
        }
        #expect(order == ["pay-1", "buy-2"])
    }

    /// Feeds `count` windows of `rtt` at full use, 100 ms apart from `clock` on.
    private static func feed(_ limit: inout AdaptiveConcurrencyLimit, rtt: Duration, count: Int, clock: inout MonotonicInstant) {
        for _ in 0..<count {
            clock = clock + .milliseconds(100)
            limit.sample(rtt: rtt, inFlight: limit.limit, now: clock)
        }
    }

    @Test func theAdaptiveLimitShrinksWhenLatencyRisesAndGrowsBackWhenItFalls() {
        var limit = AdaptiveConcurrencyLimit(.init(initial: 50, minimum: 5, maximum: 200, probeInterval: .seconds(100_000)), epoch: Self.t0)
        var clock = Self.t0
        // Healthy: 10 ms at full use — the limit grows (by about √limit per step, smoothed).
        Self.feed(&limit, rtt: .milliseconds(10), count: 100, clock: &clock)
        let grown = limit.limit
        #expect(grown > 50)
        // The backend slows to 40 ms: the limit falls towards the minimum.
        Self.feed(&limit, rtt: .milliseconds(40), count: 60, clock: &clock)
        let shrunk = limit.limit
        #expect(shrunk < grown / 2)
        #expect(shrunk >= 5)
        // Fast again: it grows back.
        Self.feed(&limit, rtt: .milliseconds(10), count: 200, clock: &clock)
        #expect(limit.limit > shrunk * 2)
        #expect(limit.limit <= 200)
    }

    @Test func aFewMillisecondsOfEventLoopDelayAreNotTakenForAnOverloadedBackend() {
        // A fast backend (0.3 ms) behind a saturated gateway: every answer is read 2 ms late.
        var limit = AdaptiveConcurrencyLimit(.init(initial: 50, minimum: 5, maximum: 200, probeInterval: .seconds(100_000)), epoch: Self.t0)
        var clock = Self.t0
        Self.feed(&limit, rtt: .microseconds(300), count: 1, clock: &clock)
        Self.feed(&limit, rtt: .milliseconds(2), count: 50, clock: &clock)
        #expect(limit.limit > 50)
        // Without the allowance it would have fallen to its minimum.
        var strict = AdaptiveConcurrencyLimit(
            .init(initial: 50, minimum: 5, maximum: 200, probeInterval: .seconds(100_000), allowance: .zero), epoch: Self.t0
        )
        clock = Self.t0
        Self.feed(&strict, rtt: .microseconds(300), count: 1, clock: &clock)
        Self.feed(&strict, rtt: .milliseconds(2), count: 50, clock: &clock)
        #expect(strict.limit == 5)
    }

    @Test func anIdleBackendDoesNotRaiseTheLimit() {
        var limit = AdaptiveConcurrencyLimit(.init(initial: 40, minimum: 4, maximum: 1000, probeInterval: .seconds(100_000)), epoch: Self.t0)
        for step in 1...500 {
            limit.sample(rtt: .milliseconds(5), inFlight: 3, now: Self.t0 + .milliseconds(100 * step))
        }
        #expect(limit.limit == 40)
        #expect(limit.baseline == .milliseconds(5))
    }

    @Test func theMinimumIsMeasuredAgainAtTheMinimumLimitEveryProbeInterval() {
        // Probes at t0 + 1 s (a quarter interval), then t0 + 4 s, 8 s, ...
        var limit = AdaptiveConcurrencyLimit(.init(initial: 20, minimum: 4, maximum: 100, probeInterval: .seconds(4)), epoch: Self.t0)
        let at = { (milliseconds: Int) in Self.t0 + .milliseconds(milliseconds) }
        #expect(limit.limit == 20)
        // The first window came under load: its 30 ms is the first minimum.
        limit.sample(rtt: .milliseconds(30), inFlight: 20, now: at(500))
        #expect(limit.baseline == .milliseconds(30))
        // The first probe: the limit at its minimum; the requests admitted before finish first
        // (a window with 20 under way: not a measurement), then two windows with no more than
        // the minimum under way measure 10 ms (the load had been queueing).
        #expect(limit.sample(rtt: .milliseconds(30), inFlight: 20, now: at(1_000)) == 4)
        #expect(limit.sample(rtt: .milliseconds(30), inFlight: 20, now: at(1_100)) == 4)
        #expect(limit.sample(rtt: .milliseconds(11), inFlight: 4, now: at(1_200)) == 4)
        let afterProbe = limit.sample(rtt: .milliseconds(10), inFlight: 4, now: at(1_300))
        #expect(afterProbe > 4)
        #expect(limit.baseline == .milliseconds(10))
        // Against 10 ms, 30 ms under load is slow: the limit shrinks.
        for step in 0..<5 {
            limit.sample(rtt: .milliseconds(30), inFlight: limit.limit, now: at(1_400 + 100 * step))
        }
        #expect(limit.limit < afterProbe)
        // At 4 s the next probe finds the backend slower for good: 30 ms is its new minimum,
        // and the limit grows against it.
        #expect(limit.sample(rtt: .milliseconds(30), inFlight: limit.limit, now: at(4_000)) == 4)
        #expect(limit.sample(rtt: .milliseconds(30), inFlight: 4, now: at(4_100)) == 4)
        let shrunk = limit.sample(rtt: .milliseconds(30), inFlight: 4, now: at(4_200))
        #expect(limit.baseline == .milliseconds(30))
        for step in 0..<4 {
            limit.sample(rtt: .milliseconds(30), inFlight: limit.limit, now: at(4_300 + 100 * step))
        }
        #expect(limit.limit > shrunk)
        // No probe before 8 s.
        #expect(limit.sample(rtt: .milliseconds(30), inFlight: limit.limit, now: at(7_900)) > 4)
        #expect(limit.sample(rtt: .milliseconds(30), inFlight: limit.limit, now: at(8_000)) == 4)
        // A probe whose requests under way never fall to the minimum ends after 20 windows and
        // keeps the minimum it had.
        for step in 1...19 {
            #expect(limit.sample(rtt: .milliseconds(5), inFlight: 10, now: at(8_000 + 100 * step)) == 4)
        }
        #expect(limit.sample(rtt: .milliseconds(5), inFlight: 10, now: at(10_000)) > 4)
        #expect(limit.baseline == .milliseconds(30))
    }

    @Test func anRTTWindowAveragesItsSamplesAndKeepsThePeakInFlight() {
        var window = RTTWindow(minimumSamples: 3, minimumDuration: .milliseconds(100))
        #expect(window.add(rtt: .milliseconds(10), inFlight: 4, now: Self.t0) == nil)
        #expect(window.add(rtt: .milliseconds(20), inFlight: 9, now: Self.t0 + .milliseconds(50)) == nil)
        // Three samples, but only 60 ms: not yet.
        #expect(window.add(rtt: .milliseconds(30), inFlight: 2, now: Self.t0 + .milliseconds(60)) == nil)
        let sample = window.add(rtt: .milliseconds(40), inFlight: 1, now: Self.t0 + .milliseconds(100))
        #expect(sample?.rtt == .milliseconds(25))
        #expect(sample?.inFlight == 9)
        // The next window starts afresh.
        #expect(window.add(rtt: .milliseconds(1), inFlight: 1, now: Self.t0 + .milliseconds(101)) == nil)
    }
}

import GateCore
import GateRedis
import GateRules
import NIOCore

/// One event loop's admission control: for each upstream, this loop's share of the
/// `admission:` limits (the cap, the adaptive limit's bounds, the queue) and of the backends'
/// `max_in_flight`, so no request takes a lock to be admitted. Connections are spread over the
/// loops evenly, so the shares add up to the configured totals.
///
/// The request is admitted, queued (its waiter, registered with `wait`, is called once: with
/// `nil` when admitted later, or the refusal when its deadline passes first), or refused on
/// arrival. One timer per upstream refuses the waiting requests whose deadline came (not one
/// per request: deadlines are arrival plus the same wait, so the earliest is at a queue's front).
final class LoopAdmission {
    /// A request waiting for a slot: called once with its ticket when it is admitted (`nil`)
    /// or refused.
    typealias Waiter = (UInt64, AdmissionQueue<UInt64>.Refusal?) -> Void

    enum Arrival {
        case admitted
        case queued(ticket: UInt64)
        case refused(AdmissionQueue<UInt64>.Refusal)
    }

    private final class Gate {
        var queue: AdmissionQueue<UInt64>
        var adaptive: AdaptiveConcurrencyLimit?
        /// The adaptive limit moves once per window of answers (at least 10 and 25 ms: a probe
        /// at the minimum limit lasts a few windows, so they are short for a fast backend).
        var window = RTTWindow(minimumSamples: 10, minimumDuration: .milliseconds(25))
        /// This loop's share of `max_in_flight`.
        let cap: Int
        /// This loop's share of the backends' `max_in_flight` over those taking traffic
        /// (`nil`: some backend has none).
        var backendCapacity: Int?
        var waiters: [UInt64: Waiter] = [:]
        /// When each waiting request arrived (for the longest wait).
        var arrivals: [UInt64: MonotonicInstant] = [:]
        /// The longest a request waited before it was admitted.
        var longestWait = Duration.zero
        /// The deadline the timer is set for, if it is set.
        var timerDeadline: MonotonicInstant?

        init(cap: Int, queue: Int, adaptive: AdaptiveConcurrencyLimit?) {
            self.cap = cap
            self.adaptive = adaptive
            self.queue = AdmissionQueue(limit: min(cap, adaptive?.limit ?? cap), maximumQueue: queue)
        }

        /// The limit now: the adaptive one (or the cap), under the backends' capacity.
        func refreshLimit() {
            var limit = min(self.cap, self.adaptive?.limit ?? self.cap)
            if let capacity = self.backendCapacity {
                limit = min(limit, capacity)
            }
            self.queue.limit = max(1, limit)
        }
    }

    let configuration: Admission
    /// This loop's place among `loopCount` loops (for its share of each limit).
    let loopIndex: Int
    let loopCount: Int
    /// Shared by every loop's adaptive limits: they measure their minimum at the same times.
    let epoch: MonotonicInstant
    private var gates: [String: Gate] = [:]
    private var nextTicket: UInt64 = 0
    private let eventLoop: any EventLoop

    init(configuration: Admission, loopIndex: Int, loopCount: Int, epoch: MonotonicInstant, eventLoop: any EventLoop) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.epoch = epoch
        self.loopIndex = loopIndex
        self.loopCount = max(1, loopCount)
    }

    /// This loop's share of `total` (the remainder goes to the first loops; at least 1, unless
    /// `total` is 0: `queue: 0` means no request waits on any loop).
    func share(of total: Int) -> Int {
        guard total > 0 else {
            return 0
        }
        return max(1, total / self.loopCount + (self.loopIndex < total % self.loopCount ? 1 : 0))
    }

    private func gate(_ upstream: String) -> Gate {
        if let gate = self.gates[upstream] {
            return gate
        }
        let adaptive = self.configuration.adaptive.map { bounds in
            AdaptiveConcurrencyLimit(AdaptiveConcurrencyLimit.Configuration(
                initial: self.share(of: bounds.initial),
                minimum: self.share(of: bounds.minimum),
                maximum: self.share(of: bounds.maximum),
                tolerance: bounds.tolerance,
                smoothing: bounds.smoothing,
                probeInterval: bounds.probeInterval,
                allowance: bounds.allowance
            ), epoch: self.epoch)
        }
        let gate = Gate(cap: self.share(of: self.configuration.maximumInFlight), queue: self.share(of: self.configuration.queue), adaptive: adaptive)
        self.gates[upstream] = gate
        return gate
    }

    /// Sets how many requests the backends of `upstream` that take traffic may have from this
    /// loop (`nil`: unbounded by them).
    func setBackendCapacity(_ capacity: Int?, upstream: String) {
        let gate = self.gate(upstream)
        if gate.backendCapacity != capacity {
            gate.backendCapacity = capacity
            gate.refreshLimit()
            self.settle(gate, now: .now())
        }
    }

    /// A request for `upstream` arrives at `now`. A queued one must be given its waiter with
    /// `wait` at once (before the loop runs anything else).
    func arrive(upstream: String, priority: AdmissionPriority, now: MonotonicInstant) -> Arrival {
        let gate = self.gate(upstream)
        self.nextTicket &+= 1
        let ticket = self.nextTicket
        switch gate.queue.arrive(ticket, priority: priority, deadline: now + self.configuration.queueTimeout, now: now) {
        case .admitted:
            return .admitted
        case .queued:
            gate.arrivals[ticket] = now
            self.armTimer(gate, upstream: upstream)
            return .queued(ticket: ticket)
        case .refused(let refusal):
            return .refused(refusal)
        }
    }

    /// The waiter of a request `arrive` queued (a closure only for requests that wait).
    func wait(upstream: String, ticket: UInt64, waiter: @escaping Waiter) {
        self.gates[upstream]?.waiters[ticket] = waiter
    }

    /// Sets the gate's timer for the earliest deadline of its queue, unless it is set for it.
    private func armTimer(_ gate: Gate, upstream: String) {
        guard let deadline = gate.queue.earliestDeadline else {
            return
        }
        if let armed = gate.timerDeadline, armed <= deadline {
            return
        }
        gate.timerDeadline = deadline
        let delay = max(.zero, deadline - .now())
        self.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.nanosecondsClamped)) {
            gate.timerDeadline = nil
            // Past the deadline by a tick, so the queue's "deadline < now" holds.
            self.settle(gate, now: .now() + .nanoseconds(1))
            self.armTimer(gate, upstream: upstream)
        }
    }

    /// An admitted request of `upstream` ended; `serviceTime` from admission to the answer's
    /// head (`nil`: no answer came). Admits the next waiting requests.
    func finish(upstream: String, serviceTime: Duration?, now: MonotonicInstant) {
        guard let gate = self.gates[upstream] else {
            return
        }
        if let serviceTime, gate.adaptive != nil, let sample = gate.window.add(rtt: serviceTime, inFlight: gate.queue.inFlight, now: now) {
            gate.adaptive!.sample(rtt: sample.rtt, inFlight: sample.inFlight, now: now)
            gate.refreshLimit()
        }
        let (admitted, timedOut) = gate.queue.finish(serviceTime: serviceTime, now: now)
        self.resolve(gate, admitted: admitted, timedOut: timedOut, now: now)
    }

    /// A waiting request is taken out (its deadline came, or its client left); returns whether
    /// it was still waiting. Its waiter is not called.
    @discardableResult
    func withdraw(upstream: String, ticket: UInt64) -> Bool {
        guard let gate = self.gates[upstream], gate.queue.cancel(ticket) else {
            return false
        }
        gate.waiters[ticket] = nil
        gate.arrivals[ticket] = nil
        return true
    }

    /// Requests under way and waiting for `upstream` on this loop, its limit now, and the
    /// longest any request waited before it was admitted.
    func load(upstream: String) -> (inFlight: Int, queued: Int, limit: Int, longestWait: Duration) {
        guard let gate = self.gates[upstream] else {
            return (0, 0, self.share(of: self.configuration.maximumInFlight), .zero)
        }
        return (gate.queue.inFlight, gate.queue.queued, gate.queue.limit, gate.longestWait)
    }

    /// The admission of `upstream` over every event loop: requests under way and waiting, the
    /// limit (the sum of the loops' shares), and the longest any admitted request waited.
    static func total(upstream: String, over loops: some Sequence<NIOLoopBound<LoopState>>) async -> (inFlight: Int, queued: Int, limit: Int, longestWait: Duration) {
        var total = (inFlight: 0, queued: 0, limit: 0, longestWait: Duration.zero)
        for bound in loops {
            guard let load = try? await bound.eventLoop.submit({ bound.value.admission.load(upstream: upstream) }).get() else {
                continue
            }
            total.inFlight += load.inFlight
            total.queued += load.queued
            total.limit += load.limit
            total.longestWait = max(total.longestWait, load.longestWait)
        }
        return total
    }

    /// Admits what a raised limit lets through and refuses what is past its deadline.
    private func settle(_ gate: Gate, now: MonotonicInstant) {
        let (admitted, timedOut) = gate.queue.expire(now: now)
        self.resolve(gate, admitted: admitted, timedOut: timedOut, now: now)
    }

    private func resolve(_ gate: Gate, admitted: [UInt64], timedOut: [UInt64], now: MonotonicInstant) {
        for ticket in timedOut {
            gate.arrivals[ticket] = nil
            gate.waiters.removeValue(forKey: ticket)?(ticket, .timedOut)
        }
        for ticket in admitted {
            if let arrival = gate.arrivals.removeValue(forKey: ticket) {
                gate.longestWait = max(gate.longestWait, now - arrival)
            }
            gate.waiters.removeValue(forKey: ticket)?(ticket, nil)
        }
    }
}

@available(*, unavailable)
extension LoopAdmission: Sendable {}

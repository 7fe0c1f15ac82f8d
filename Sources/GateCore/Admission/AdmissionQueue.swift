/// Which requests go first when an upstream is at its limit (`priority:` on a route; a valid
/// challenge pass makes a request `high` too).
public enum AdmissionPriority: String, Sendable, Hashable, CaseIterable, Comparable {
    /// Payments and clients holding a challenge pass: they already got somewhere.
    case high
    /// New purchase attempts and everything else.
    case normal

    /// Its queue, from 0 (served first).
    var rank: Int {
        switch self {
        case .high: 0
        case .normal: 1
        }
    }

    public static func < (lhs: AdmissionPriority, rhs: AdmissionPriority) -> Bool {
        lhs.rank < rhs.rank
    }
}

/// Admission control in front of one group of backends: at most `limit` requests under way,
/// the others waiting in a bounded FIFO queue per priority, each with a deadline. A request that
/// would wait past its deadline is refused at once (the expected wait is the queue ahead of it
/// times the recent service time, divided by the limit), not after waiting. Higher priorities
/// (payments, clients with a challenge pass) are admitted before new purchase attempts.
///
/// Pure: the caller passes the time in, starts what `arrive`/`finish`/`expire` admit, and
/// answers what they refuse. `Ticket` names a request.
public struct AdmissionQueue<Ticket: Hashable & Sendable>: Sendable {
    public typealias Priority = AdmissionPriority

    /// Why a request was refused; each is counted on its own.
    public enum Refusal: String, Sendable, Hashable, CaseIterable {
        /// The queue is full.
        case queueFull = "queue_full"
        /// It would have waited past its deadline (refused on arrival).
        case wouldMissDeadline = "deadline"
        /// It waited and its deadline passed before a slot freed.
        case timedOut = "queue_timeout"
    }

    public enum Arrival: Sendable, Hashable {
        case admitted
        case queued
        case refused(Refusal)
    }

    private struct Waiting: Sendable {
        let ticket: Ticket
        let deadline: MonotonicInstant
    }

    /// At most this many wait, all priorities together.
    public let maximumQueue: Int
    /// Requests under way now.
    public private(set) var inFlight = 0
    /// How many may be under way (set by a fixed cap or an adaptive limit).
    public var limit: Int {
        didSet {
            self.limit = max(1, self.limit)
        }
    }

    private var queues: [[Waiting]]
    private var heads: [Int]
    /// Smoothed service time in nanoseconds (for the expected wait); `nil` before any sample.
    private var serviceTime: Double?

    public init(limit: Int, maximumQueue: Int) {
        self.limit = max(1, limit)
        self.maximumQueue = max(0, maximumQueue)
        self.queues = Array(repeating: [], count: Priority.allCases.count)
        self.heads = Array(repeating: 0, count: Priority.allCases.count)
    }

    /// Requests waiting now.
    public var queued: Int {
        var count = 0
        for rank in self.queues.indices {
            count += self.queues[rank].count - self.heads[rank]
        }
        return count
    }

    /// The earliest deadline of a waiting request (each queue is in arrival order, and every
    /// deadline is its arrival plus the same wait, so it is one of the queues' first).
    public var earliestDeadline: MonotonicInstant? {
        var earliest: MonotonicInstant?
        for rank in self.queues.indices where self.heads[rank] < self.queues[rank].count {
            let deadline = self.queues[rank][self.heads[rank]].deadline
            earliest = min(earliest ?? deadline, deadline)
        }
        return earliest
    }

    /// What the queue expects `position` requests ahead to cost in waiting.
    func expectedWait(ahead position: Int) -> Duration {
        guard let serviceTime = self.serviceTime else {
            return .zero
        }
        return .nanoseconds(Int64(serviceTime * Double(position + 1) / Double(self.limit)))
    }

    /// A request arrives at `now` with `priority`, to be started by `deadline` at the latest.
    public mutating func arrive(_ ticket: Ticket, priority: Priority, deadline: MonotonicInstant, now: MonotonicInstant) -> Arrival {
        // Counted in a loop: a filtered array would be allocated per request.
        var ahead = 0
        for rank in 0...priority.rank {
            ahead += self.queues[rank].count - self.heads[rank]
        }
        if self.inFlight < self.limit, ahead == 0 {
            self.inFlight += 1
            return .admitted
        }
        guard self.queued < self.maximumQueue else {
            return .refused(.queueFull)
        }
        guard now + self.expectedWait(ahead: ahead) <= deadline else {
            return .refused(.wouldMissDeadline)
        }
        self.queues[priority.rank].append(Waiting(ticket: ticket, deadline: deadline))
        return .queued
    }

    /// A request under way ended after `serviceTime` (`nil`: it failed before any answer, and
    /// says nothing about the service time). Returns the waiting requests admitted now, in
    /// order, and those found past their deadline.
    public mutating func finish(serviceTime: Duration?, now: MonotonicInstant) -> (admitted: [Ticket], timedOut: [Ticket]) {
        self.inFlight = max(0, self.inFlight - 1)
        if let serviceTime {
            let sample = Double(serviceTime.components.seconds) * 1e9 + Double(serviceTime.components.attoseconds) / 1e9
            self.serviceTime = self.serviceTime.map { $0 + (sample - $0) / 8 } ?? sample
        }
        // The fronts only (cheap: this runs per request); `expire` looks behind them.
        return self.admitWaiting(now: now)
    }

    /// Refuses the waiting requests whose deadline has passed, wherever they wait (call on a
    /// timer, at `earliestDeadline`); also admits what a raised limit lets through.
    public mutating func expire(now: MonotonicInstant) -> (admitted: [Ticket], timedOut: [Ticket]) {
        let (admitted, timedOut) = self.admitWaiting(now: now)
        // Deadlines of lower priorities still pass while higher ones hold every slot, and a
        // deadline earlier than those before it hides behind them.
        return (admitted, timedOut + self.dropExpired(now: now))
    }

    /// Takes a waiting request out (its client went away); whether it was waiting.
    @discardableResult
    public mutating func cancel(_ ticket: Ticket) -> Bool {
        for index in self.queues.indices {
            if let position = self.queues[index][self.heads[index]...].firstIndex(where: { $0.ticket == ticket }) {
                self.queues[index].remove(at: position)
                return true
            }
        }
        return false
    }

    private mutating func admitWaiting(now: MonotonicInstant) -> (admitted: [Ticket], timedOut: [Ticket]) {
        var admitted: [Ticket] = []
        var timedOut: [Ticket] = []
        // By index, in priority order (no `allCases` array per call: this runs per request).
        for index in self.queues.indices {
            while self.heads[index] < self.queues[index].count {
                let waiting = self.queues[index][self.heads[index]]
                if waiting.deadline < now {
                    timedOut.append(waiting.ticket)
                    self.heads[index] += 1
                    continue
                }
                guard self.inFlight < self.limit else {
                    break
                }
                self.inFlight += 1
                admitted.append(waiting.ticket)
                self.heads[index] += 1
            }
            // Forget the consumed front now and then (amortised O(1)).
            if self.heads[index] > 64, self.heads[index] * 2 > self.queues[index].count {
                self.queues[index].removeFirst(self.heads[index])
                self.heads[index] = 0
            }
        }
        return (admitted, timedOut)
    }

    /// Refuses everything past its deadline behind the first waiting request of each queue.
    private mutating func dropExpired(now: MonotonicInstant) -> [Ticket] {
        var expired: [Ticket] = []
        for index in self.queues.indices where self.heads[index] < self.queues[index].count {
            let live = self.queues[index][self.heads[index]...]
            let (gone, kept) = live.reduce(into: ([Waiting](), [Waiting]())) { split, waiting in
                if waiting.deadline < now {
                    split.0.append(waiting)
                } else {
                    split.1.append(waiting)
                }
            }
            if !gone.isEmpty {
                expired += gone.map(\.ticket)
                self.queues[index] = kept
                self.heads[index] = 0
            }
        }
        return expired
    }
}

/// The client-side clock of one keep-alive connection: how long it may sit idle, how long a
/// request head may take to arrive, and how slowly a request body may trickle in.
///
/// Slowloris attacks hold a proxy's connections open by sending a head or a body a few bytes at
/// a time; each limit here closes one way of doing that:
/// - **Idle**: between requests a connection may stay silent for `idle`; the first request of a
///   connection gets `header` instead (a client that connects and says nothing is not "idle").
/// - **Header**: from the first byte of a request, its whole head must be in within `header`
///   (answered 408), however steadily the bytes come.
/// - **Body rate**: once `bodyRateGrace` has passed since the head, the body must have averaged
///   at least `bodyMinimumRate` bytes per second (answered 408).
///
/// While the upstream works on the answer the clock stops: a slow backend is not the client's
/// fault, and the upstream has its own timeout. The edge asks `deadline` for when to look next
/// and `expired(at:)` when that time comes; arriving bytes only move a number, so a busy
/// connection never reschedules a timer.
public struct ConnectionDeadlines: Sendable {
    /// The limits; defaults match the gateway configuration's.
    public struct Configuration: Sendable, Hashable {
        /// Longest time for a whole request head, from its first byte (and for the first
        /// request's first byte, from the accept).
        public var header: Duration
        /// Longest silence between two requests on a keep-alive connection.
        public var idle: Duration
        /// The slowest body accepted, in bytes per second, averaged since the head.
        public var bodyMinimumRate: Int
        /// How long a body may start slowly before its rate is checked.
        public var bodyRateGrace: Duration

        public init(
            header: Duration = .seconds(10),
            idle: Duration = .seconds(60),
            bodyMinimumRate: Int = 1024,
            bodyRateGrace: Duration = .seconds(5)
        ) {
            self.header = header
            self.idle = idle
            self.bodyMinimumRate = max(0, bodyMinimumRate)
            self.bodyRateGrace = bodyRateGrace
        }
    }

    /// Which limit ran out.
    public enum Expiry: Sendable, Hashable {
        /// No request started within the idle (or first-request) time: close without an answer.
        case idle
        /// The request head did not complete in time: answer 408 and close.
        case header
        /// The request body came in slower than the minimum rate: answer 408 and close.
        case slowBody
    }

    private enum State: Sendable, Hashable {
        /// Between requests; a request must start by `deadline`.
        case waiting(deadline: MonotonicInstant)
        /// A head is arriving; it must be complete by `deadline`.
        case readingHead(deadline: MonotonicInstant)
        /// The body has been arriving since `since`; `bytes` of it so far.
        case readingBody(since: MonotonicInstant, bytes: Int)
        /// The request is complete and its answer is under way: no client-side limit applies.
        case responding
    }

    public let configuration: Configuration
    private var state: State

    /// A new connection accepted at `now`: its first request must start within `header`.
    public init(configuration: Configuration = Configuration(), acceptedAt now: MonotonicInstant) {
        self.configuration = configuration
        self.state = .waiting(deadline: now + configuration.header)
    }

    /// Bytes of the connection arrived (a head's or a body's, before decoding).
    public mutating func bytesReceived(_ count: Int, at now: MonotonicInstant) {
        switch self.state {
        case .waiting:
            self.state = .readingHead(deadline: now + self.configuration.header)
        case .readingBody(let since, let bytes):
            self.state = .readingBody(since: since, bytes: bytes + count)
        case .readingHead, .responding:
            break
        }
    }

    /// A whole request head was decoded; its body (if any) starts now.
    ///
    /// A pipelined head can be decoded from bytes that arrived while the previous answer was
    /// under way, so this is accepted in any state.
    public mutating func headReceived(at now: MonotonicInstant) {
        self.state = .readingBody(since: now, bytes: 0)
    }

    /// The request ended (its body, if any, is in): the clock stops until the answer ends.
    public mutating func requestEnded() {
        self.state = .responding
    }

    /// The answer ended and the connection stays open: the idle time starts.
    public mutating func responseEnded(at now: MonotonicInstant) {
        self.state = .waiting(deadline: now + self.configuration.idle)
    }

    /// When to call `expired(at:)` next; `nil` while the answer is under way.
    public var deadline: MonotonicInstant? {
        switch self.state {
        case .waiting(let deadline), .readingHead(let deadline):
            return deadline
        case .readingBody(let since, let bytes):
            let grace = since + self.configuration.bodyRateGrace
            guard self.configuration.bodyMinimumRate > 0 else {
                return nil
            }
            // The instant at which `bytes` falls below the minimum rate.
            let seconds = Double(bytes) / Double(self.configuration.bodyMinimumRate)
            let starved = since + .nanoseconds(Int64(min(seconds, 1e9) * 1e9))
            return max(grace, starved)
        case .responding:
            return nil
        }
    }

    /// Which limit has run out at `now`, if any.
    public func expired(at now: MonotonicInstant) -> Expiry? {
        switch self.state {
        case .waiting(let deadline):
            return now >= deadline ? .idle : nil
        case .readingHead(let deadline):
            return now >= deadline ? .header : nil
        case .readingBody:
            guard let deadline = self.deadline else {
                return nil
            }
            return now >= deadline ? .slowBody : nil
        case .responding:
            return nil
        }
    }
}

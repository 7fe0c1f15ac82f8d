/// How long the gateway waits for each thing a connection or a backend owes it.
public struct Timeouts: Sendable, Hashable {
    /// The whole request head must arrive within this, or the client gets `408`.
    public var header: Duration
    /// How long a keep-alive connection may sit idle between requests.
    public var idle: Duration
    /// The least request-body bytes per second a client must send, measured after
    /// `bodyRateGrace`; 0 for no minimum. Stops slow-body (slowloris) clients holding a slot.
    public var bodyMinimumRate: Int
    /// How long a request body may trickle before `bodyMinimumRate` applies.
    public var bodyRateGrace: Duration
    /// How long dialling a backend may take.
    public var upstreamConnect: Duration
    /// From the request sent to a backend to its response head.
    public var upstreamResponse: Duration
    /// How long a graceful shutdown lets requests under way finish.
    public var drain: Duration

    /// Timeouts, each defaulting to the value a flash-sale gateway starts with.
    public init(
        header: Duration = .seconds(10),
        idle: Duration = .seconds(60),
        bodyMinimumRate: Int = 1024,
        bodyRateGrace: Duration = .seconds(5),
        upstreamConnect: Duration = .seconds(2),
        upstreamResponse: Duration = .seconds(30),
        drain: Duration = .seconds(10)
    ) {
        self.header = header
        self.idle = idle
        self.bodyMinimumRate = bodyMinimumRate
        self.bodyRateGrace = bodyRateGrace
        self.upstreamConnect = upstreamConnect
        self.upstreamResponse = upstreamResponse
        self.drain = drain
    }
}

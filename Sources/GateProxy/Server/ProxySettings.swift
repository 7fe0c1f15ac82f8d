import GateCore
import GateRedis
import GateRules
import NIOCore

/// The per-connection numbers every proxy handler needs, taken once from the configuration.
struct ProxySettings: Sendable {
    let headLimits: RequestHeadCheck.Limits
    let deadlines: ConnectionDeadlines.Configuration
    let upstreamConnectTimeout: TimeAmount
    let upstreamResponseTimeout: TimeAmount
    let outboundBufferBytes: Int
    /// Most backends one request tries to connect to (only connect failures are retried).
    let maximumConnectAttempts: Int
    let metrics: GatewayMetrics
    /// This gateway's in-flight flags (one request per account on the routes that say so).
    let inFlight: InFlightRegistry
    /// This gateway's sliding windows and bans.
    let abuse: AbuseGuard
    /// The keys passes are signed with when the rules name none (`passes:`): random per
    /// process, so such a pass verifies only on the gateway that issued it.
    let passKeys: PassToken.Keyring
    /// The flags shared through Redis, when the gateway has a Redis.
    let flagStore: RedisFlagStore?
    /// Whether the gateway has a Redis (the sold-out stock is read there).
    let hasRedis: Bool
    /// The warm-up gate.
    let warmup: WarmupController
    /// The routes' sold-out latches.
    let soldOut: SoldOutBoard
    /// The access log, when one is configured (`access_log:`).
    let accessLog: AccessLog?

    init(configuration: GatewayConfiguration, metrics: GatewayMetrics, redis: RedisClient? = nil, accessLog: AccessLog? = nil) {
        self.metrics = metrics
        self.accessLog = accessLog
        self.inFlight = InFlightRegistry()
        self.abuse = AbuseGuard(sharesClusterWindows: redis != nil)
        var generator = SystemRandomNumberGenerator()
        self.passKeys = PassToken.Keyring.random(using: &generator)
        self.flagStore = redis.map { RedisFlagStore(client: $0) }
        self.hasRedis = redis != nil
        var warmup = configuration.warmup
        warmup.usesRedis = redis != nil
        self.warmup = WarmupController(configuration: warmup)
        self.soldOut = SoldOutBoard()
        let limits = configuration.limits
        let timeouts = configuration.timeouts
        self.headLimits = limits.requestHead
        self.deadlines = ConnectionDeadlines.Configuration(
            header: timeouts.header,
            idle: timeouts.idle,
            bodyMinimumRate: timeouts.bodyMinimumRate,
            bodyRateGrace: timeouts.bodyRateGrace
        )
        self.upstreamConnectTimeout = .nanoseconds(timeouts.upstreamConnect.nanosecondsClamped)
        self.upstreamResponseTimeout = .nanoseconds(timeouts.upstreamResponse.nanosecondsClamped)
        self.outboundBufferBytes = limits.outboundBufferBytes
        self.maximumConnectAttempts = 3
    }
}

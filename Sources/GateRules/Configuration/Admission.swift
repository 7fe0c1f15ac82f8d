import GateCore

/// How much the gateway lets through to each upstream, and how long a request may wait for a
/// slot (`admission:` in the gateway configuration).
public struct Admission: Sendable, Hashable {
    /// Requests under way to one upstream at most, all event loops together (the cap the
    /// adaptive limit moves under).
    public var maximumInFlight: Int
    /// Requests that may wait for a slot, per upstream.
    public var queue: Int
    /// How long a request may wait; one that would wait longer is refused on arrival.
    public var queueTimeout: Duration
    /// The adaptive limit's bounds, or `nil` for the fixed `maximumInFlight` alone.
    public var adaptive: AdaptiveConcurrencyLimit.Configuration?

    public init(
        maximumInFlight: Int = 2_000,
        queue: Int = 1_000,
        queueTimeout: Duration = .milliseconds(500),
        adaptive: AdaptiveConcurrencyLimit.Configuration? = AdaptiveConcurrencyLimit.Configuration(initial: 100, minimum: 10, maximum: 2_000)
    ) {
        self.maximumInFlight = maximumInFlight
        self.queue = queue
        self.queueTimeout = queueTimeout
        self.adaptive = adaptive
    }
}

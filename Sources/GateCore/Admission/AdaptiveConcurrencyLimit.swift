/// A concurrency limit that follows the backend's latency, after Netflix's Gradient2: a long
/// average of the round-trip time stands for "healthy", the latest sample for "now"; when
/// "now" is slower than "healthy" (beyond `tolerance`) the limit shrinks by their ratio, when it
/// is not the limit grows by a headroom of √limit; each step is smoothed and kept within bounds.
/// The limit only grows while the load uses at least half of it (an idle backend says nothing
/// about how much it can take). Pure: samples are passed in.
public struct AdaptiveConcurrencyLimit: Sendable {
    public struct Configuration: Sendable, Hashable {
        public var initial: Int
        public var minimum: Int
        public var maximum: Int
        /// How much slower than the long average a sample may be before the limit shrinks.
        public var tolerance: Double
        /// Weight of each new limit (0…1).
        public var smoothing: Double
        /// Samples the long average spans.
        public var longWindow: Int

        public init(initial: Int = 20, minimum: Int = 4, maximum: Int = 1000, tolerance: Double = 1.5, smoothing: Double = 0.2, longWindow: Int = 600) {
            self.minimum = max(1, minimum)
            self.maximum = max(self.minimum, maximum)
            self.initial = min(max(initial, self.minimum), self.maximum)
            self.tolerance = max(1, tolerance)
            self.smoothing = min(max(smoothing, 0.01), 1)
            self.longWindow = max(2, longWindow)
        }
    }

    public let configuration: Configuration
    private var estimate: Double
    /// Nanoseconds; `nil` before the first sample.
    private var longRTT: Double?

    public init(_ configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.estimate = Double(configuration.initial)
    }

    /// The limit now.
    public var limit: Int {
        Int(self.estimate.rounded(.down))
    }

    /// The long (healthy) round-trip time, if any sample came.
    public var baseline: Duration? {
        self.longRTT.map { .nanoseconds(Int64($0)) }
    }

    /// Takes one answered request's round-trip time, with `inFlight` requests under way when it
    /// ended; returns the new limit.
    @discardableResult
    public mutating func sample(rtt: Duration, inFlight: Int) -> Int {
        let short = max(1, Double(rtt.components.seconds) * 1e9 + Double(rtt.components.attoseconds) / 1e9)
        let window = Double(self.configuration.longWindow)
        var long = self.longRTT.map { $0 + (short - $0) / window } ?? short
        // After a lasting slow-down the "healthy" average would trail for ages: let it fall
        // towards the present while the present is much faster.
        if long / short > 2 {
            long *= 0.95
        }
        self.longRTT = long
        if Double(inFlight) < self.estimate / 2 {
            return self.limit
        }
        let gradient = min(1, max(0.5, self.configuration.tolerance * long / short))
        let proposed = self.estimate * gradient + self.estimate.squareRoot()
        let smoothed = self.estimate * (1 - self.configuration.smoothing) + proposed * self.configuration.smoothing
        self.estimate = min(Double(self.configuration.maximum), max(Double(self.configuration.minimum), smoothed))
        return self.limit
    }
}

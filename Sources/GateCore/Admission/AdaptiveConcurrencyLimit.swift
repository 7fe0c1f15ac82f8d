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

/// Gathers the round-trip times of single requests into windows for `AdaptiveConcurrencyLimit`
/// (as Netflix's `WindowedLimit`): one sample per window of at least `minimumSamples` requests
/// and `minimumDuration`, its average RTT and the most requests under way in it. A limit moved
/// per request would follow every scheduling hiccup; per window it follows the trend.
public struct RTTWindow: Sendable {
    public let minimumSamples: Int
    public let minimumDuration: Duration
    private var start: MonotonicInstant?
    private var count = 0
    private var totalNanoseconds: Double = 0
    private var peakInFlight = 0

    public init(minimumSamples: Int = 10, minimumDuration: Duration = .milliseconds(100)) {
        self.minimumSamples = max(1, minimumSamples)
        self.minimumDuration = max(.zero, minimumDuration)
    }

    /// Adds one request's `rtt` (with `inFlight` under way) at `now`; returns the window's
    /// sample when the window is complete (and starts the next).
    public mutating func add(rtt: Duration, inFlight: Int, now: MonotonicInstant) -> (rtt: Duration, inFlight: Int)? {
        let start = self.start ?? now
        self.start = start
        self.count += 1
        self.totalNanoseconds += Double(rtt.components.seconds) * 1e9 + Double(rtt.components.attoseconds) / 1e9
        self.peakInFlight = max(self.peakInFlight, inFlight)
        guard self.count >= self.minimumSamples, now - start >= self.minimumDuration else {
            return nil
        }
        let sample = (Duration.nanoseconds(Int64(self.totalNanoseconds / Double(self.count))), self.peakInFlight)
        self = RTTWindow(minimumSamples: self.minimumSamples, minimumDuration: self.minimumDuration)
        return sample
    }
}

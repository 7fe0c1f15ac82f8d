/// A concurrency limit that follows the backend's latency against its measured minimum, as
/// Envoy's adaptive concurrency filter: the minimum round-trip time stands for "healthy", each
/// window's average for "now"; when "now" is slower than the minimum (beyond `tolerance`) the
/// limit shrinks by their ratio (Gradient2's gradient, at most halving it), otherwise it grows
/// by a headroom of √limit; each step is smoothed and kept within bounds. The limit only grows
/// while the load uses at least half of it (an idle backend says nothing about its capacity).
///
/// The first window's average is the first minimum; it is measured again at `epoch +
/// probeInterval / 4` (a first window under full load shows the overloaded latency) and then
/// every `probeInterval` after `epoch`: the limit drops to its minimum until the windows'
/// latency stops falling (the requests queued before have drained; at most 10 windows), and
/// the lowest window is the new minimum — so a minimum taken under load does not creep up with
/// it. Limits that share a backend (one per event
/// loop) share the epoch, so they probe together and each measures an unloaded backend.
/// Pure: samples and time come in.
public struct AdaptiveConcurrencyLimit: Sendable {
    public struct Configuration: Sendable, Hashable {
        public var initial: Int
        public var minimum: Int
        public var maximum: Int
        /// How much slower than the minimum a window may be before the limit shrinks.
        public var tolerance: Double
        /// Weight of each new limit (0…1).
        public var smoothing: Double
        /// Time between two measurements of the minimum round-trip time.
        public var probeInterval: Duration

        public init(
            initial: Int = 20, minimum: Int = 4, maximum: Int = 1000, tolerance: Double = 1.5, smoothing: Double = 0.2,
            probeInterval: Duration = .seconds(10)
        ) {
            self.minimum = max(1, minimum)
            self.maximum = max(self.minimum, maximum)
            self.initial = min(max(initial, self.minimum), self.maximum)
            self.tolerance = max(1, tolerance)
            self.smoothing = min(max(smoothing, 0.01), 1)
            self.probeInterval = max(.milliseconds(100), probeInterval)
        }
    }

    private enum Probe: Sendable {
        case none
        /// The limit is held at the minimum while the backend's queue drains: `windows` seen,
        /// the lowest average so far and the last one.
        case measuring(windows: Int, lowest: Double, last: Double?)
    }

    /// Most windows a probe lasts (a backend whose latency keeps falling for that long is
    /// taken at its lowest).
    static let longestProbe = 10

    public let configuration: Configuration
    private var estimate: Double
    /// Nanoseconds; `nil` before the first sample.
    private var minimumRTT: Double?
    private var probe = Probe.none
    private let epoch: MonotonicInstant
    private var nextProbe: MonotonicInstant

    /// A limit whose probes fall at `epoch + probeInterval / 4` and every `probeInterval` after
    /// `epoch`.
    public init(_ configuration: Configuration = Configuration(), epoch: MonotonicInstant) {
        self.configuration = configuration
        self.estimate = Double(configuration.initial)
        self.epoch = epoch
        self.nextProbe = epoch + configuration.probeInterval / 4
    }

    /// The limit now (its minimum while the minimum round-trip time is being measured).
    public var limit: Int {
        if case .none = self.probe {
            return Int(self.estimate.rounded(.down))
        }
        return self.configuration.minimum
    }

    /// The minimum round-trip time measured, if any sample came.
    public var baseline: Duration? {
        self.minimumRTT.map { .nanoseconds(Int64($0)) }
    }

    /// Takes one window's average round-trip time, ending at `now`, with at most `inFlight`
    /// requests under way in it; returns the new limit.
    @discardableResult
    public mutating func sample(rtt: Duration, inFlight: Int, now: MonotonicInstant) -> Int {
        let short = max(1, Double(rtt.components.seconds) * 1e9 + Double(rtt.components.attoseconds) / 1e9)
        if case .measuring(let windows, let lowest, let last) = self.probe {
            // At the minimum concurrency the backend's queue drains and its latency falls; once
            // it stops falling, the lowest window is the backend's own latency.
            let best = min(lowest, short)
            let settled = windows >= 2 && last.map { short >= $0 * 0.95 } == true
            if settled || windows + 1 >= Self.longestProbe {
                self.minimumRTT = best
                self.probe = .none
            } else {
                self.probe = .measuring(windows: windows + 1, lowest: best, last: short)
            }
            return self.limit
        }
        self.minimumRTT = min(self.minimumRTT ?? short, short)
        if now >= self.nextProbe {
            // The next multiple of the interval after `now`.
            let periods = Int((now - self.epoch) / self.configuration.probeInterval) + 1
            self.nextProbe = self.epoch + self.configuration.probeInterval * periods
            self.probe = .measuring(windows: 0, lowest: .infinity, last: nil)
            return self.limit
        }
        guard Double(inFlight) >= self.estimate / 2, let minimum = self.minimumRTT else {
            return self.limit
        }
        let gradient = min(1, max(0.5, self.configuration.tolerance * minimum / short))
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

/// A concurrency limit that follows the backend's latency against its measured minimum, as
/// Envoy's adaptive concurrency filter: the minimum round-trip time stands for "healthy", each
/// window's average for "now"; when "now" is slower than the minimum (beyond `tolerance` and an
/// absolute `allowance`) the limit shrinks by their ratio (Gradient2's gradient, at most halving it), otherwise it grows
/// by a headroom of √limit; each step is smoothed and kept within bounds. The limit only grows
/// while the load uses at least half of it (an idle backend says nothing about its capacity).
///
/// The first window's average is the first minimum; it is measured again at `epoch +
/// probeInterval / 4` (a first window under full load shows the overloaded latency) and then
/// every `probeInterval` after `epoch`: the limit drops to its minimum, the requests admitted
/// before finish, and the lowest of the next two windows with no more than the minimum under
/// way is the new minimum (a probe that never gets there within 20 windows keeps the old one)
/// — so a minimum taken under load does not creep up with it. Limits that share a backend (one per event
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
        /// Latency added to `tolerance × minimum` before a window counts as slow: the noise of
        /// a busy gateway's own event loop (a saturated gateway answers everything a few
        /// milliseconds later, which says nothing about its backends).
        public var allowance: Duration

        public init(
            initial: Int = 20, minimum: Int = 4, maximum: Int = 1000, tolerance: Double = 1.5, smoothing: Double = 0.2,
            probeInterval: Duration = .seconds(10), allowance: Duration = .milliseconds(5)
        ) {
            self.minimum = max(1, minimum)
            self.maximum = max(self.minimum, maximum)
            self.initial = min(max(initial, self.minimum), self.maximum)
            self.tolerance = max(1, tolerance)
            self.smoothing = min(max(smoothing, 0.01), 1)
            self.probeInterval = max(.milliseconds(100), probeInterval)
            self.allowance = max(.zero, allowance)
        }
    }

    private enum Probe: Sendable {
        case none
        /// The limit is held at the minimum: `windows` seen so far, of which `drained` had no
        /// more than the minimum under way (their requests did not queue behind older ones),
        /// and the lowest average of those.
        case measuring(windows: Int, drained: Int, lowest: Double?)
    }

    /// Most windows a probe lasts (one whose requests under way never fell to the minimum keeps
    /// the minimum it had).
    static let longestProbe = 20
    /// Windows at the minimum concurrency a probe measures.
    static let probeWindows = 2

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
        if case .measuring(let windows, var drained, var lowest) = self.probe {
            // The requests admitted before the probe finish first (their latency is the
            // overloaded one); only windows with no more than the minimum under way measure.
            if inFlight <= self.configuration.minimum {
                drained += 1
                lowest = min(lowest ?? short, short)
            }
            if drained >= Self.probeWindows || windows + 1 >= Self.longestProbe {
                if let lowest {
                    self.minimumRTT = lowest
                }
                self.probe = .none
            } else {
                self.probe = .measuring(windows: windows + 1, drained: drained, lowest: lowest)
            }
            return self.limit
        }
        self.minimumRTT = min(self.minimumRTT ?? short, short)
        if now >= self.nextProbe {
            // The next multiple of the interval after `now`.
            let periods = Int((now - self.epoch) / self.configuration.probeInterval) + 1
            self.nextProbe = self.epoch + self.configuration.probeInterval * periods
            self.probe = .measuring(windows: 0, drained: 0, lowest: nil)
            return self.limit
        }
        guard Double(inFlight) >= self.estimate / 2, let minimum = self.minimumRTT else {
            return self.limit
        }
        let allowance = Double(self.configuration.allowance.components.seconds) * 1e9 + Double(self.configuration.allowance.components.attoseconds) / 1e9
        let gradient = min(1, max(0.5, (self.configuration.tolerance * minimum + allowance) / short))
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

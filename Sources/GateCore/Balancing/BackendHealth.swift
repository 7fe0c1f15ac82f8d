/// Whether one backend takes traffic, and how much: active health checks (rise/fall), passive
/// ejection after consecutive failed requests (with exponential back-off), and slow start.
///
/// - Active checks: `fall` failed checks in a row take a serving backend down; `rise` passing
///   checks in a row bring a down backend back.
/// - Passive ejection: `ejectAfter` failed requests in a row (connect failures or 5xx) eject a
///   serving backend for `ejection` × 2^(n-1) (n = ejections in a row, capped at
///   `maximumEjection`); it comes back by itself when the time is up. A backend that served for
///   `maximumEjection` since its last ejection starts again from the base time.
/// - Slow start: a backend that (re)joins gets `weight × elapsed / slowStart` (at least 1 of
///   `scale` parts) until `slowStart` has passed, so a cold node is not flooded.
///
/// Time is passed in; every transition can be replayed in a test.
public struct BackendHealth: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Passing active checks in a row that bring a down backend back.
        public var rise: Int
        /// Failing active checks in a row that take a serving backend down.
        public var fall: Int
        /// Failed requests in a row that eject a serving backend.
        public var ejectAfter: Int
        /// The first ejection's length; each further one in a row doubles it.
        public var ejection: Duration
        /// The longest ejection.
        public var maximumEjection: Duration
        /// How long a (re)joining backend ramps up to its full weight (zero: no ramp).
        public var slowStart: Duration

        public init(
            rise: Int = 2,
            fall: Int = 3,
            ejectAfter: Int = 5,
            ejection: Duration = .seconds(5),
            maximumEjection: Duration = .seconds(300),
            slowStart: Duration = .seconds(10)
        ) {
            self.rise = max(1, rise)
            self.fall = max(1, fall)
            self.ejectAfter = max(1, ejectAfter)
            self.ejection = ejection
            self.maximumEjection = max(ejection, maximumEjection)
            self.slowStart = max(.zero, slowStart)
        }
    }

    /// What a recorded event changed, for logs and metrics.
    public enum Transition: Sendable, Hashable {
        /// Failed active checks took the backend down.
        case wentDown
        /// Passing active checks brought the backend back (slow start begins).
        case cameBack
        /// Failed requests ejected the backend until the given time.
        case ejected(until: MonotonicInstant)
    }

    /// Where the backend stands.
    public enum Phase: Sendable, Hashable {
        /// Takes traffic; ramping up until the given instant when slow start applies.
        case serving(rampUntil: MonotonicInstant?)
        /// Failed its active checks; waits for `rise` passing ones.
        case down
        /// Ejected by failed requests until the given instant.
        case ejected(until: MonotonicInstant)
    }

    private enum State: Sendable, Hashable {
        /// Takes traffic since `since` (`nil`: since the start, no ramp).
        case serving(since: MonotonicInstant?)
        /// Failed active checks; `passes` passing checks in a row so far.
        case down(passes: Int)
        /// Ejected until `until`; serves again from then on (with a ramp).
        case ejected(until: MonotonicInstant)
    }

    public let configuration: Configuration
    private var state: State
    private var failedChecks = 0
    private var failedRequests = 0
    private var ejectionsInARow = 0
    private var lastEjection: MonotonicInstant?

    /// A backend that serves from the start (as nginx and HAProxy assume) until told otherwise.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.state = .serving(since: nil)
    }

    /// The phase at `now` (an ejection that ran out counts as serving).
    public func phase(at now: MonotonicInstant) -> Phase {
        switch self.normalized(at: now) {
        case .serving(let since):
            guard let since, self.configuration.slowStart > .zero else {
                return .serving(rampUntil: nil)
            }
            let end = since + self.configuration.slowStart
            return .serving(rampUntil: now < end ? end : nil)
        case .down:
            return .down
        case .ejected(let until):
            return .ejected(until: until)
        }
    }

    /// The weight to balance with at `now`: 0 while down or ejected, `weight × scale` when
    /// serving, ramping from 1 to that over the slow start.
    public func effectiveWeight(_ weight: Int, scale: Int = 100, at now: MonotonicInstant) -> Int {
        let full = max(0, weight) * max(1, scale)
        switch self.normalized(at: now) {
        case .down, .ejected:
            return 0
        case .serving(let since):
            guard full > 0, let since, self.configuration.slowStart > .zero else {
                return full
            }
            let elapsed = now - since
            guard elapsed < self.configuration.slowStart else {
                return full
            }
            let fraction = Double(elapsed.nanosecondsClamped) / Double(self.configuration.slowStart.nanosecondsClamped)
            return max(1, Int(Double(full) * max(0, fraction)))
        }
    }

    /// Records an active health check's result.
    public mutating func recordCheck(passed: Bool, at now: MonotonicInstant) -> Transition? {
        self.state = self.normalized(at: now)
        switch self.state {
        case .serving, .ejected:
            if passed {
                self.failedChecks = 0
                return nil
            }
            self.failedChecks += 1
            guard self.failedChecks >= self.configuration.fall else {
                return nil
            }
            self.failedChecks = 0
            self.failedRequests = 0
            self.state = .down(passes: 0)
            return .wentDown
        case .down(let passes):
            guard passed else {
                self.state = .down(passes: 0)
                return nil
            }
            guard passes + 1 >= self.configuration.rise else {
                self.state = .down(passes: passes + 1)
                return nil
            }
            self.state = .serving(since: now)
            return .cameBack
        }
    }

    /// Records how a request forwarded to the backend ended: `failed` for a connect failure or
    /// a 5xx answer, otherwise a success. With `mayEject` false (too many of its upstream's
    /// backends are ejected already) the failures are counted but eject nothing.
    public mutating func recordRequest(failed: Bool, at now: MonotonicInstant, mayEject: Bool = true) -> Transition? {
        self.state = self.normalized(at: now)
        guard case .serving = self.state else {
            // Down or ejected: requests that were already under way say nothing new.
            return nil
        }
        guard failed else {
            self.failedRequests = 0
            return nil
        }
        self.failedRequests += 1
        guard self.failedRequests >= self.configuration.ejectAfter, mayEject else {
            return nil
        }
        self.failedRequests = 0
        if let last = self.lastEjection, now - last >= self.configuration.maximumEjection + self.ejectionLength(self.ejectionsInARow) {
            self.ejectionsInARow = 0
        }
        self.ejectionsInARow += 1
        self.lastEjection = now
        let until = now + self.ejectionLength(self.ejectionsInARow)
        self.state = .ejected(until: until)
        return .ejected(until: until)
    }

    /// `ejection × 2^(n-1)`, capped at `maximumEjection`.
    private func ejectionLength(_ ejections: Int) -> Duration {
        var length = self.configuration.ejection
        var remaining = ejections - 1
        while remaining > 0 && length < self.configuration.maximumEjection {
            length = length * 2
            remaining -= 1
        }
        return min(length, self.configuration.maximumEjection)
    }

    /// The state with an ejection that ran out turned back into serving (ramping from its end).
    private func normalized(at now: MonotonicInstant) -> State {
        if case .ejected(let until) = self.state, now >= until {
            return .serving(since: until)
        }
        return self.state
    }
}

/// Fails fast while a dependency is down, and lets one probe through now and then to find out
/// whether it is back.
///
/// The classic three-state breaker. `closed` lets everything through and counts consecutive
/// failures; at `failureThreshold` it opens. `open` refuses everything until `openDuration` has
/// passed, then turns `halfOpen`, where exactly one caller is told it is the probe while every
/// other caller is still refused. The probe's success closes the breaker; its failure opens it
/// again for another `openDuration`. A success reported in any state closes it: for Redis, a
/// reconnect that succeeded in the background is as good a probe as any command.
///
/// Time comes in as a parameter, so tests step through it without sleeping.
public struct CircuitBreaker: Sendable, Hashable {
    /// When to open and for how long.
    public struct Configuration: Sendable, Hashable {
        /// Consecutive failures that open the breaker (at least 1).
        public var failureThreshold: Int
        /// How long an open breaker refuses before it lets a probe through.
        public var openDuration: Duration

        /// Creates a configuration; a threshold below 1 is raised to 1.
        public init(failureThreshold: Int = 5, openDuration: Duration = .milliseconds(500)) {
            self.failureThreshold = max(1, failureThreshold)
            self.openDuration = openDuration
        }
    }

    /// The answer to "may this call go through now?".
    public enum Admission: Sendable, Hashable {
        /// The breaker is closed: go ahead.
        case allow
        /// The breaker is half-open and this caller is its one probe: go ahead and report back.
        case probe
        /// The breaker is open: fail at once; it lets a probe through at `retryAt` at the earliest.
        case reject(retryAt: MonotonicInstant)
    }

    /// What a `Circuit` looks like from outside, for metrics and readiness.
    public enum Phase: String, Sendable, Hashable {
        case closed
        case open
        case halfOpen = "half_open"
    }

    private enum State: Sendable, Hashable {
        /// Calls go through; `failures` consecutive ones have failed so far.
        case closed(failures: Int)
        /// Calls are refused until `until`.
        case open(until: MonotonicInstant)
        /// One probe may go through; `probeInFlight` tells whether it has been handed out.
        case halfOpen(probeInFlight: Bool, since: MonotonicInstant)
    }

    public let configuration: Configuration
    private var state: State = .closed(failures: 0)

    /// Creates a closed breaker.
    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// The breaker's phase at `now` (an open breaker whose time is up reads as half-open).
    public func phase(at now: MonotonicInstant) -> Phase {
        switch self.state {
        case .closed:
            return .closed
        case .open(let until):
            return now >= until ? .halfOpen : .open
        case .halfOpen:
            return .halfOpen
        }
    }

    /// Decides whether a call may go through at `now`.
    ///
    /// A probe handed out and never reported (its caller vanished) is given `openDuration` to
    /// report; after that the next caller becomes the probe, so the breaker cannot stick half-open.
    public mutating func admit(now: MonotonicInstant) -> Admission {
        switch self.state {
        case .closed:
            return .allow
        case .open(let until):
            if now < until {
                return .reject(retryAt: until)
            }
            self.state = .halfOpen(probeInFlight: true, since: now)
            return .probe
        case .halfOpen(let probeInFlight, let since):
            if probeInFlight && now < since + self.configuration.openDuration {
                return .reject(retryAt: since + self.configuration.openDuration)
            }
            self.state = .halfOpen(probeInFlight: true, since: now)
            return .probe
        }
    }

    /// Records a success: the breaker closes and the failure count starts again.
    public mutating func recordSuccess() {
        self.state = .closed(failures: 0)
    }

    /// Records a failure at `now`; returns `true` when this failure opened the breaker.
    @discardableResult
    public mutating func recordFailure(now: MonotonicInstant) -> Bool {
        switch self.state {
        case .closed(let failures):
            let count = failures + 1
            if count >= self.configuration.failureThreshold {
                self.state = .open(until: now + self.configuration.openDuration)
                return true
            }
            self.state = .closed(failures: count)
            return false
        case .open:
            return false
        case .halfOpen:
            self.state = .open(until: now + self.configuration.openDuration)
            return true
        }
    }
}

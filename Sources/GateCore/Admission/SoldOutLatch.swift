/// The sold-out latch of one route: once the backends say the sale is over, the gateway answers
/// "sold out" itself instead of forwarding, and lets one request through every `recheck`
/// interval to ask again (expired reservations bring tickets back: a backend that then sells
/// opens the latch). Pure: time is passed in.
public struct SoldOutLatch: Sendable {
    public enum State: Sendable, Hashable {
        /// Requests are forwarded.
        case open
        /// Answered locally since `since`; the next probe may go at `nextProbe`.
        case latched(since: MonotonicInstant, nextProbe: MonotonicInstant)
    }

    public enum Decision: Sendable, Hashable {
        /// Forward the request.
        case forward
        /// Forward it as the probe that asks the backends again.
        case probe
        /// Answer "sold out" locally.
        case soldOut
    }

    public let recheck: Duration
    public private(set) var state: State = .open
    /// Requests answered locally since the latch closed last.
    public private(set) var answeredLocally = 0

    public init(recheck: Duration) {
        self.recheck = max(.milliseconds(1), recheck)
    }

    /// What to do with a request at `now`. While latched, one request per `recheck` interval
    /// is a probe; the others are answered locally.
    public mutating func decide(now: MonotonicInstant) -> Decision {
        guard case .latched(let since, let nextProbe) = self.state else {
            return .forward
        }
        if now >= nextProbe {
            self.state = .latched(since: since, nextProbe: now + self.recheck)
            return .probe
        }
        self.answeredLocally += 1
        return .soldOut
    }

    /// The probe handed out was refused before it reached a backend (a challenge, a ban, a
    /// limit, shed): it asked nobody, so the next request may probe at once. Without this, a
    /// route behind a CAPTCHA gate spends every probe on a challenge and stays latched while
    /// tickets are back.
    public mutating func probeUnused(now: MonotonicInstant) {
        if case .latched(let since, _) = self.state {
            self.state = .latched(since: since, nextProbe: now)
        }
    }

    /// A backend answered that the sale is over (or a stock check found none).
    public mutating func observedSoldOut(now: MonotonicInstant) {
        if case .latched = self.state {
            return
        }
        self.state = .latched(since: now, nextProbe: now + self.recheck)
        self.answeredLocally = 0
    }

    /// A backend sold (or a stock check found tickets): forward again.
    public mutating func observedAvailable() {
        self.state = .open
    }
}

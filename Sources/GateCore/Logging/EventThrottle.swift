/// Lets one occurrence of a repeated event through per `interval` and counts the rest.
///
/// For log lines that an outage repeats per request ("purchase failed" ×10,000/s): the first
/// occurrence is logged at once, then at most one per interval, each saying how many were held
/// back since the previous one. Time is passed in.
public struct EventThrottle: Sendable {
    /// The shortest time between two occurrences let through.
    public let interval: Duration
    private var nextAllowed: MonotonicInstant?
    private var heldBack = 0

    public init(interval: Duration) {
        self.interval = interval
    }

    /// Records one occurrence at `now`: `nil` when it is held back, otherwise how many were held
    /// back since the last one let through.
    public mutating func admit(at now: MonotonicInstant) -> Int? {
        if let nextAllowed = self.nextAllowed, now < nextAllowed {
            self.heldBack += 1
            return nil
        }
        self.nextAllowed = now + self.interval
        defer { self.heldBack = 0 }
        return self.heldBack
    }
}

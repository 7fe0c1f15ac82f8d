/// Delays between retries that double after each failure, up to a ceiling, with jitter.
///
/// Used for reconnecting to Redis and, later, for re-admitting an ejected backend. The jitter is
/// "equal jitter": half of the current step is fixed and the other half is drawn from the random
/// number passed in, so many gateways that lost Redis at the same moment do not reconnect in
/// lock-step, yet none retries sooner than half the step. The caller supplies the randomness
/// (`unitRandom` in `0..<1`), which keeps this type pure and its tests exact.
public struct ExponentialBackoff: Sendable, Hashable {
    /// The first step, used after the first failure.
    public var initial: Duration
    /// The ceiling no step grows past.
    public var maximum: Duration
    /// The growth factor between steps (2 doubles).
    public var multiplier: Double

    /// How many failures in a row have been seen since the last success.
    public private(set) var attempts: Int = 0

    /// Creates a back-off; `initial` must be positive and not above `maximum`, `multiplier` ≥ 1.
    public init(initial: Duration = .milliseconds(10), maximum: Duration = .seconds(2), multiplier: Double = 2) {
        precondition(initial > .zero, "back-off initial step must be positive")
        precondition(maximum >= initial, "back-off maximum must not be below the initial step")
        precondition(multiplier >= 1, "back-off multiplier must be at least 1")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
    }

    /// The step (before jitter) that the next failure will use.
    public var currentStep: Duration {
        var step = Double(self.initial.nanosecondsClamped)
        let ceiling = Double(self.maximum.nanosecondsClamped)
        var remaining = self.attempts
        while remaining > 0 && step < ceiling {
            step *= self.multiplier
            remaining -= 1
        }
        return .nanoseconds(Int64(min(step, ceiling)))
    }

    /// Records a failure and returns how long to wait before the next attempt.
    ///
    /// - Parameter unitRandom: a random number in `0..<1` (values outside are clamped).
    public mutating func nextDelay(unitRandom: Double) -> Duration {
        let step = Double(self.currentStep.nanosecondsClamped)
        let random = min(max(unitRandom, 0), 1)
        self.attempts += 1
        return .nanoseconds(Int64(step / 2 + step / 2 * random))
    }

    /// Forgets past failures after a success: the next failure waits the initial step again.
    public mutating func reset() {
        self.attempts = 0
    }
}

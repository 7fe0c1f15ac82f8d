/// A point on a monotonic clock, in nanoseconds from an arbitrary origin.
///
/// `GateCore` never reads a clock: the edges read theirs (NIO's `NIODeadline.now()`, a test's
/// hand-made value) and pass the instant in, so every decision can be replayed in a test without
/// sleeping. Only differences between instants of the same clock mean anything.
public struct MonotonicInstant: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Nanoseconds since the clock's origin.
    public var nanoseconds: Int64

    /// Creates the instant `nanoseconds` after the clock's origin.
    public init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    /// The clock's origin; useful as a starting point in tests.
    public static let zero = MonotonicInstant(nanoseconds: 0)

    public static func < (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }

    /// The instant `duration` later (earlier for a negative duration), saturating at the ends.
    public static func + (lhs: MonotonicInstant, rhs: Duration) -> MonotonicInstant {
        let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(rhs.nanosecondsClamped)
        if overflow {
            return MonotonicInstant(nanoseconds: rhs < .zero ? .min : .max)
        }
        return MonotonicInstant(nanoseconds: sum)
    }

    /// The time from `rhs` to `lhs`.
    public static func - (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Duration {
        .nanoseconds(lhs.nanoseconds &- rhs.nanoseconds)
    }

    public var description: String {
        "\(self.nanoseconds)ns"
    }
}

extension Duration {
    /// The duration in whole nanoseconds, clamped to the range of `Int64`.
    public var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = self.components
        let (fromSeconds, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow {
            return seconds < 0 ? .min : .max
        }
        let (sum, overflow2) = fromSeconds.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 {
            return seconds < 0 ? .min : .max
        }
        return sum
    }
}

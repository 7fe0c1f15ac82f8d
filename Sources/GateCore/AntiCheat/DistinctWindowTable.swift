/// How many distinct values each key showed within a sliding window: the accounts one client
/// address used (zombie accounts behind one address), or the addresses one account came from
/// (one account driven from a botnet).
///
/// Exact, and bounded twice: a key keeps at most `cap` values (the caller's highest threshold
/// plus one is all it needs to know: "more than N"), and the table at most `capacity` keys.
public struct DistinctWindowTable: Sendable {
    public let length: Duration
    public let cap: Int
    public let capacity: Int
    /// For each key, each value and when it was last seen.
    private var entries: [String: [String: MonotonicInstant]] = [:]

    public init(length: Duration, cap: Int, capacity: Int = 200_000) {
        self.length = length
        self.cap = max(1, cap)
        self.capacity = max(1, capacity)
    }

    public var count: Int {
        self.entries.count
    }

    /// Notes `value` for `key` at `now`; returns how many distinct values `key` showed within
    /// `length` (at most `cap`), or `nil` when the table is full of live keys and `key` is new.
    public mutating func record(_ key: String, value: String, now: MonotonicInstant) -> Int? {
        if self.entries[key] == nil && self.entries.count >= self.capacity {
            self.sweep(now: now)
            guard self.entries.count < self.capacity else {
                return nil
            }
        }
        var seen = self.entries[key] ?? [:]
        let oldest = now + (Duration.zero - self.length)
        seen = seen.filter { $0.value > oldest }
        if seen[value] != nil || seen.count < self.cap {
            seen[value] = now
        }
        self.entries[key] = seen
        return seen.count
    }

    /// Drops keys with nothing seen within `length`; returns how many.
    @discardableResult
    public mutating func sweep(now: MonotonicInstant) -> Int {
        let before = self.entries.count
        let oldest = now + (Duration.zero - self.length)
        self.entries = self.entries.filter { $0.value.values.contains { $0 > oldest } }
        return before - self.entries.count
    }
}

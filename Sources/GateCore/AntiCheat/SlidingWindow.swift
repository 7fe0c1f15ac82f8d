/// A request rate over a sliding window, estimated from two fixed windows (the approach of
/// Cloudflare's and Kong's rate limiters): the count of the current window plus the previous
/// window's count weighted by how much of it still overlaps the sliding window.
///
/// `estimate = previous × (1 − elapsed / length) + current`, where `elapsed` is the time since
/// the current window began. Two integers per key instead of a timestamp per request, and
/// within a few percent of the exact sliding count for traffic that is roughly even.
public struct SlidingWindow: Sendable, Hashable {
    public let length: Duration
    private var currentStart: MonotonicInstant
    private var current: Int = 0
    private var previous: Int = 0

    public init(length: Duration, now: MonotonicInstant) {
        precondition(length > .zero, "a window has a length")
        self.length = length
        self.currentStart = now
    }

    /// Counts `count` events at `now` and returns the estimate with them.
    public mutating func record(_ count: Int = 1, now: MonotonicInstant) -> Double {
        self.roll(to: now)
        self.current += count
        return self.estimate(now: now)
    }

    /// The estimated number of events in the `length` before `now`.
    public func estimate(now: MonotonicInstant) -> Double {
        var window = self
        window.roll(to: now)
        let elapsed = (now - window.currentStart) / window.length
        return Double(window.previous) * max(0, 1 - elapsed) + Double(window.current)
    }

    /// Whether nothing counted lies within the last two windows (the entry can be dropped).
    public func isIdle(now: MonotonicInstant) -> Bool {
        now - self.currentStart >= self.length * 2 || (self.current == 0 && self.previous == 0)
    }

    /// Moves the current window forward to the one holding `now`.
    private mutating func roll(to now: MonotonicInstant) {
        let elapsed = now - self.currentStart
        guard elapsed >= self.length else {
            return
        }
        let passed = Int(elapsed / self.length)
        self.previous = passed == 1 ? self.current : 0
        self.current = 0
        self.currentStart = self.currentStart + self.length * passed
    }
}

/// Sliding windows by key (client address, account), bounded: when full, idle entries are
/// dropped, and if none is idle a new key is counted as if it were at the limit of what can be
/// kept (`record` returns `nil`: the caller decides, e.g. refuses).
public struct SlidingWindowTable: Sendable {
    public let length: Duration
    public let capacity: Int
    private var windows: [String: SlidingWindow] = [:]

    public init(length: Duration, capacity: Int = 1_000_000) {
        self.length = length
        self.capacity = max(1, capacity)
    }

    public var count: Int {
        self.windows.count
    }

    /// Counts one event for `key` at `now`; the estimate, or `nil` when the table is full of
    /// live keys and `key` is new.
    public mutating func record(_ key: String, now: MonotonicInstant) -> Double? {
        if self.windows[key] == nil && self.windows.count >= self.capacity {
            self.sweep(now: now)
            guard self.windows.count < self.capacity else {
                return nil
            }
        }
        return self.windows[key, default: SlidingWindow(length: self.length, now: now)].record(now: now)
    }

    /// The estimate for `key` at `now` (0 for a key never seen).
    public func estimate(_ key: String, now: MonotonicInstant) -> Double {
        self.windows[key]?.estimate(now: now) ?? 0
    }

    /// Drops idle keys; returns how many.
    @discardableResult
    public mutating func sweep(now: MonotonicInstant) -> Int {
        let before = self.windows.count
        self.windows = self.windows.filter { !$0.value.isIdle(now: now) }
        return before - self.windows.count
    }
}

/// Sliding windows whose counts are shared by every gateway on one Redis (a window rule with
/// `scope: cluster`), synchronised in batches as Kong's `sync_rate` does: each gateway counts
/// in memory and, every sync interval, adds what it counted to Redis and reads back the whole
/// cluster's totals. Between two syncs a key's estimate is the cluster total last read plus what
/// this gateway counted since — so a client spread over several gateways is limited by its
/// total, at most one interval late.
///
/// Buckets are aligned on wall-clock time (`now / length`), so every gateway means the same
/// bucket by the same number; the estimate is the same two-window weighted one as the local
/// windows'. Pure: time (Unix milliseconds) is passed in; the caller does the Redis I/O with
/// `takeSync` and `applySync` / `restoreSync`.
public struct ClusterWindowCounts: Sendable {
    /// A window rule and the key it counts (a client address or an account).
    public struct Key: Sendable, Hashable {
        public let rule: String
        public let key: String

        public init(rule: String, key: String) {
            self.rule = rule
            self.key = key
        }
    }

    /// What one key sends to Redis in a sync, and which totals it reads back.
    public struct SyncItem: Sendable, Hashable {
        public let key: Key
        public let lengthMillis: Int64
        /// The current bucket when the sync was taken: its total and the one before are read.
        public let bucket: Int64
        /// Counts to add, by bucket (the current one, and the previous one when this gateway
        /// counted in it since the last sync).
        public let adds: [Bucket]

        public struct Bucket: Sendable, Hashable {
            public let bucket: Int64
            public let count: Int

            public init(bucket: Int64, count: Int) {
                self.bucket = bucket
                self.count = count
            }
        }
    }

    private struct Entry {
        var lengthMillis: Int64
        /// The bucket `current` belongs to.
        var bucket: Int64
        /// The cluster's total of `bucket` and of the bucket before, as last read.
        var current = 0
        var previous = 0
        /// Counted here, not yet sent; sent, not yet confirmed — by bucket.
        var pending: [Int64: Int] = [:]
        var sending: [Int64: Int] = [:]
        var lastUsed: Int64

        mutating func roll(to bucket: Int64) {
            guard bucket > self.bucket else {
                return
            }
            self.previous = bucket == self.bucket + 1 ? self.current : 0
            self.current = 0
            self.bucket = bucket
            // Counts older than the previous bucket no longer matter to anyone's estimate.
            self.pending = self.pending.filter { $0.key >= bucket - 1 }
            self.sending = self.sending.filter { $0.key >= bucket - 1 }
        }

        func estimate(now: Int64) -> Double {
            let mine = { (bucket: Int64) in (self.pending[bucket] ?? 0) + (self.sending[bucket] ?? 0) }
            let fraction = Double(now - self.bucket * self.lengthMillis) / Double(self.lengthMillis)
            let current = Double(self.current + mine(self.bucket))
            let previous = Double(self.previous + mine(self.bucket - 1))
            return current + previous * max(0, 1 - fraction)
        }
    }

    private var entries: [Key: Entry] = [:]
    /// The keys counted since the last `takeSync` (so a sync looks at those only, not at every key).
    private var dirty: Set<Key> = []
    public let capacity: Int

    public init(capacity: Int = 1_000_000) {
        self.capacity = max(1, capacity)
    }

    public var count: Int {
        self.entries.count
    }

    /// Counts one request of `key` at `now` (Unix ms) in a window of `lengthMillis`; the
    /// cluster-wide estimate including it, or `nil` when the table is full of other keys.
    public mutating func record(_ key: Key, lengthMillis: Int64, now: Int64) -> Double? {
        let length = max(1, lengthMillis)
        let bucket = now / length
        var entry: Entry
        if let existing = self.entries[key], existing.lengthMillis == length {
            entry = existing
        } else {
            guard self.entries[key] != nil || self.entries.count < self.capacity else {
                return nil
            }
            entry = Entry(lengthMillis: length, bucket: bucket, lastUsed: now)
        }
        entry.roll(to: bucket)
        entry.pending[bucket, default: 0] += 1
        entry.lastUsed = now
        self.entries[key] = entry
        self.dirty.insert(key)
        return entry.estimate(now: now)
    }

    /// The estimate of `key` at `now` without counting (0 for a key never seen).
    public func estimate(_ key: Key, now: Int64) -> Double {
        guard var entry = self.entries[key] else {
            return 0
        }
        entry.roll(to: now / entry.lengthMillis)
        return entry.estimate(now: now)
    }

    /// What to send now: every key counted since the last sync, its counts moved from pending
    /// to sending (give the items back to `applySync` or `restoreSync`).
    public mutating func takeSync(now: Int64, limit: Int = 10_000) -> [SyncItem] {
        var items: [SyncItem] = []
        let keys = self.dirty.prefix(limit)
        for key in keys {
            self.dirty.remove(key)
            guard var entry = self.entries[key], !entry.pending.isEmpty else {
                continue
            }
            entry.roll(to: now / entry.lengthMillis)
            let adds = entry.pending.sorted { $0.key < $1.key }.map { SyncItem.Bucket(bucket: $0.key, count: $0.value) }
            for add in adds {
                entry.sending[add.bucket, default: 0] += add.count
            }
            entry.pending = [:]
            self.entries[key] = entry
            if !adds.isEmpty {
                items.append(SyncItem(key: key, lengthMillis: entry.lengthMillis, bucket: entry.bucket, adds: adds))
            }
        }
        return items
    }

    /// Redis took `item`'s adds and answered the cluster totals of its bucket and the one before
    /// (which include those adds).
    public mutating func applySync(_ item: SyncItem, current: Int, previous: Int) {
        guard var entry = self.entries[item.key] else {
            return
        }
        for add in item.adds {
            let left = (entry.sending[add.bucket] ?? 0) - add.count
            entry.sending[add.bucket] = left > 0 ? left : nil
        }
        if item.bucket == entry.bucket {
            entry.current = current
            entry.previous = previous
        } else if item.bucket == entry.bucket - 1 {
            entry.previous = current
        }
        self.entries[item.key] = entry
    }

    /// The sync of `item` failed: its counts go back to pending, to be sent with the next one.
    public mutating func restoreSync(_ item: SyncItem) {
        guard var entry = self.entries[item.key] else {
            return
        }
        for add in item.adds where add.bucket >= entry.bucket - 1 {
            let left = (entry.sending[add.bucket] ?? 0) - add.count
            entry.sending[add.bucket] = left > 0 ? left : nil
            entry.pending[add.bucket, default: 0] += add.count
        }
        self.entries[item.key] = entry
        self.dirty.insert(item.key)
    }

    /// Forgets keys unused for two window lengths; returns how many.
    @discardableResult
    public mutating func sweep(now: Int64) -> Int {
        let before = self.entries.count
        self.entries = self.entries.filter { now - $0.value.lastUsed < 2 * $0.value.lengthMillis || !$0.value.sending.isEmpty }
        self.dirty = self.dirty.filter { self.entries[$0] != nil }
        return before - self.entries.count
    }

    /// The Redis key of `key`'s bucket: one hash tag per rule and key (both buckets of a key in
    /// one Redis Cluster slot).
    public static func redisKey(_ key: Key, bucket: Int64) -> String {
        "spikegate:window:{\(key.rule)|\(key.key)}:\(bucket)"
    }
}

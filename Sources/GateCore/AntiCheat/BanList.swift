/// Who is banned, by whom and until when: client addresses and accounts that crossed a rule's
/// ban threshold, refused outright until the ban ends or an operator lifts it.
///
/// Pure and single-threaded: the caller serialises access and passes the time in.
public struct BanList: Sendable {
    /// What is banned.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case ip
        case account
    }

    /// One ban, as the admin `/blocked` list shows it.
    public struct Ban: Sendable, Hashable {
        public let kind: Kind
        public let key: String
        /// The rule that banned it.
        public let rule: String
        public let reason: String
        public let since: MonotonicInstant
        public var until: MonotonicInstant
        /// Requests refused because of it.
        public var hits: Int
    }

    private var bans: [Kind: [String: Ban]] = [:]
    public let capacity: Int

    public init(capacity: Int = 1_000_000) {
        self.capacity = max(1, capacity)
    }

    /// Bans `key` for `duration` from `now` (an existing ban is extended, never shortened).
    /// Returns `false` when the list is full of live bans.
    @discardableResult
    public mutating func ban(_ kind: Kind, _ key: String, rule: String, reason: String, for duration: Duration, now: MonotonicInstant) -> Bool {
        let until = now + duration
        if var existing = self.bans[kind]?[key], existing.until > now {
            existing.until = max(existing.until, until)
            self.bans[kind, default: [:]][key] = existing
            return true
        }
        if self.count >= self.capacity {
            self.sweep(now: now)
            guard self.count < self.capacity else {
                return false
            }
        }
        self.bans[kind, default: [:]][key] = Ban(kind: kind, key: key, rule: rule, reason: reason, since: now, until: until, hits: 0)
        return true
    }

    /// The live ban of `key`, counting the hit; `nil` when it is not banned (an ended ban is
    /// dropped on the way).
    public mutating func check(_ kind: Kind, _ key: String, now: MonotonicInstant) -> Ban? {
        guard var ban = self.bans[kind]?[key] else {
            return nil
        }
        guard ban.until > now else {
            self.bans[kind]?[key] = nil
            return nil
        }
        ban.hits += 1
        self.bans[kind]?[key] = ban
        return ban
    }

    /// Lifts the ban of `key`; returns whether there was one.
    @discardableResult
    public mutating func lift(_ kind: Kind, _ key: String) -> Bool {
        self.bans[kind]?.removeValue(forKey: key) != nil
    }

    /// Every live ban at `now`, longest-running first.
    /// The ban of `key` in force at `now`, without counting a hit.
    public func current(_ kind: Kind, _ key: String, now: MonotonicInstant) -> Ban? {
        self.bans[kind]?[key].flatMap { $0.until > now ? $0 : nil }
    }

    public func list(now: MonotonicInstant) -> [Ban] {
        self.bans.values.flatMap(\.values).filter { $0.until > now }.sorted { ($0.since, $0.key) < ($1.since, $1.key) }
    }

    public var count: Int {
        self.bans.values.reduce(0) { $0 + $1.count }
    }

    /// Drops ended bans; returns how many.
    @discardableResult
    public mutating func sweep(now: MonotonicInstant) -> Int {
        let before = self.count
        for kind in Array(self.bans.keys) {
            self.bans[kind] = self.bans[kind]?.filter { $0.value.until > now }
        }
        return before - self.count
    }
}

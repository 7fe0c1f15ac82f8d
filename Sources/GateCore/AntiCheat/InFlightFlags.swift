/// The flags one gateway holds for "one request in flight per account": for each account with
/// a request under way, the token of the request that owns the flag and when the flag lapses.
///
/// A second request of the same account is refused while the flag is held. Only the owner's
/// token releases it (a late release of an older request must not free a newer one's flag), and
/// every flag lapses after its time to live, the net for a request whose release never came.
/// This table is also the gateway's local first line in front of a shared store: a bot's 100
/// parallel requests are refused here, from memory, after the first one took the flag.
///
/// Pure and single-threaded: the caller serialises access and passes the time in.
public struct InFlightFlags: Sendable {
    /// One held flag.
    public struct Flag: Sendable, Hashable {
        public let token: UInt64
        public let expires: MonotonicInstant
    }

    /// What `acquire` found.
    public enum Acquisition: Sendable, Hashable {
        /// The flag is now held with the given token.
        case acquired
        /// Another request holds the flag until `until`.
        case held(until: MonotonicInstant)
    }

    private var flags: [String: Flag] = [:]
    /// Most flags held at once; past it the oldest-expiring are swept first, then new accounts
    /// are refused rather than letting memory grow without bound.
    public let capacity: Int

    public init(capacity: Int = 1_000_000) {
        self.capacity = max(1, capacity)
    }

    /// Flags held now (lapsed ones included until a sweep or a lookup removes them).
    public var count: Int {
        self.flags.count
    }

    /// Takes the flag of `account` for the request with `token`, unless a live flag is held.
    public mutating func acquire(_ account: String, token: UInt64, ttl: Duration, now: MonotonicInstant) -> Acquisition {
        if let flag = self.flags[account], flag.expires > now {
            return .held(until: flag.expires)
        }
        if self.flags.count >= self.capacity, self.flags[account] == nil {
            self.sweep(now: now)
            if self.flags.count >= self.capacity {
                // Full of live flags: refuse rather than grow (the refusal lasts one TTL at most).
                return .held(until: now + ttl)
            }
        }
        self.flags[account] = Flag(token: token, expires: now + ttl)
        return .acquired
    }

    /// Releases the flag of `account` if `token` owns it. Returns whether it did.
    @discardableResult
    public mutating func release(_ account: String, token: UInt64) -> Bool {
        guard let flag = self.flags[account], flag.token == token else {
            return false
        }
        self.flags[account] = nil
        return true
    }

    /// The live flag of `account`, if any.
    public func flag(of account: String, now: MonotonicInstant) -> Flag? {
        guard let flag = self.flags[account], flag.expires > now else {
            return nil
        }
        return flag
    }

    /// Drops lapsed flags; returns how many.
    @discardableResult
    public mutating func sweep(now: MonotonicInstant) -> Int {
        let before = self.flags.count
        self.flags = self.flags.filter { $0.value.expires > now }
        return before - self.flags.count
    }
}

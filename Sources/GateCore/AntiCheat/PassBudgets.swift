/// What is left of each challenge pass in use: a pass (`PassToken`) lets its holder past a
/// challenge for `pass_budget` requests until it expires. A pass is known from the moment it is
/// issued here or first shown here (a pass issued by another gateway gets this gateway's budget),
/// and forgotten when it expires — never while it could still be shown, so a spent pass stays
/// spent.
///
/// Expiry is tracked in buckets of one second, so forgetting the expired passes costs time in
/// proportion to them, not to all passes. Pure: time (Unix seconds, as in the pass) is passed in.
public struct PassBudgets: Sendable {
    private struct Use {
        var left: Int
        let expires: Int64
    }

    private var uses: [String: Use] = [:]
    /// Nonces by the second they expire.
    private var expiring: [Int64: [String]] = [:]
    /// Every pass expiring at or before this second is forgotten.
    private var forgottenThrough: Int64?
    /// Passes known whose budget is spent (still remembered until they expire).
    private var spentCount = 0

    /// The most passes remembered; a new pass past it is refused until some expire.
    public let capacity: Int

    public init(capacity: Int = 1_000_000) {
        precondition(capacity > 0, "a pass book holds at least one pass")
        self.capacity = capacity
    }

    /// Passes remembered, spent or not (none expired as of the last call given a time).
    public var count: Int {
        self.uses.count
    }

    /// Passes unexpired at `now` with budget left.
    public mutating func inUse(now: Int64) -> Int {
        self.forgetExpired(now: now)
        return self.uses.count - self.spentCount
    }

    /// Records a pass just issued with its full `budget`; `false` when the book is full.
    @discardableResult
    public mutating func issued(_ pass: PassToken, budget: Int, now: Int64) -> Bool {
        self.forgetExpired(now: now)
        if self.uses[pass.nonce] != nil {
            return true
        }
        return pass.expires > now && self.remember(pass, left: budget)
    }

    /// Spends one request of `pass`'s budget (`budget` if this pass is new here); `false` when
    /// none is left, when the pass has expired, or when the book is full of live passes.
    public mutating func spend(_ pass: PassToken, budget: Int, now: Int64) -> Bool {
        self.forgetExpired(now: now)
        guard pass.expires > now else {
            return false
        }
        guard var use = self.uses[pass.nonce] else {
            return budget > 0 && self.remember(pass, left: budget - 1)
        }
        guard use.left > 0 else {
            return false
        }
        use.left -= 1
        if use.left == 0 {
            self.spentCount += 1
        }
        self.uses[pass.nonce] = use
        return true
    }

    /// Requests left on `pass` here, or `nil` when it is not known.
    public func left(_ pass: PassToken) -> Int? {
        self.uses[pass.nonce]?.left
    }

    private mutating func remember(_ pass: PassToken, left: Int) -> Bool {
        guard self.uses.count < self.capacity else {
            return false
        }
        self.uses[pass.nonce] = Use(left: left, expires: pass.expires)
        self.expiring[pass.expires, default: []].append(pass.nonce)
        if left == 0 {
            self.spentCount += 1
        }
        return true
    }

    /// Forgets every pass expired at `now` (its `expires` is not after `now`).
    private mutating func forgetExpired(now: Int64) {
        guard let through = self.forgottenThrough else {
            self.forgottenThrough = now
            self.forget(where: { $0 <= now })
            return
        }
        guard now > through else {
            return
        }
        if now - through > Int64(self.expiring.count) {
            // A long gap (or a clock step): walk the buckets rather than the seconds.
            self.forget(where: { $0 <= now })
        } else {
            for second in (through + 1)...now {
                self.forget(second)
            }
        }
        self.forgottenThrough = now
    }

    private mutating func forget(where expired: (Int64) -> Bool) {
        for second in self.expiring.keys.filter(expired) {
            self.forget(second)
        }
    }

    private mutating func forget(_ second: Int64) {
        guard let nonces = self.expiring.removeValue(forKey: second) else {
            return
        }
        for nonce in nonces {
            // A nonce is remembered once; its bucket is the one of its own expiry.
            if let use = self.uses.removeValue(forKey: nonce), use.left == 0 {
                self.spentCount -= 1
            }
        }
    }
}

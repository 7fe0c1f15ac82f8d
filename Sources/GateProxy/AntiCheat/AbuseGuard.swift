import GateChannels
import GateCore
import GateRules
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The gateway's sliding windows and bans (in-process), shared by every event loop.
///
/// A request on a route that names windows is counted in each; above a window's `ban_above`
/// its key (client address or account) is banned for `ban_for`, above `limit_above` the request
/// is refused. Bans hold on every route. One lock around the tables, taken once per counted
/// request; a request with no window to count and no ban in force takes no lock at all.
final class AbuseGuard: Sendable {
    /// What the windows and bans say about a request.
    enum Verdict {
        case pass
        /// Refused: over `rule`'s `limit_above`.
        case limited(WindowRule)
        /// Refused: banned (now or earlier).
        case banned(BanList.Ban)
        /// Over `rule`'s `challenge_above` without a pass with budget left: answer a challenge.
        case challenge(WindowRule)
    }

    private struct State {
        var tables: [String: SlidingWindowTable] = [:]
        var distinct: [String: DistinctWindowTable] = [:]
        var bans = BanList()
        /// Who was challenged, by which rule, since when, how often (for `/blocked`); a record
        /// lasts a window length after the last challenge.
        var challenged = BanList()
        var challenges = ChallengeBook()
        /// The counts of `scope: cluster` windows, shared through Redis.
        var cluster = ClusterWindowCounts()
        /// Bans made or lifted here since the last sync, for the other gateways (with a Redis).
        var banChanges: [BanChange] = []
        /// Bans learnt from the other gateways (lifted here when they leave the shared list).
        var learntBans: Set<ClusterBan.Target> = []
        /// The shared list's version last read.
        var bansVersion: Int64?
        /// Requests left on each pass in use.
        var passes = PassBudgets()

        /// Counts one request under `rule`: the number to compare with its thresholds, or
        /// `nil` when the table is full of live keys and this key is new.
        mutating func record(_ rule: WindowRule, key: String, value: String?, now: MonotonicInstant, wall: Int64?) -> Double? {
            if let value {
                let cap = max(rule.limitAbove ?? 0, rule.banAbove ?? 0) + 1
                if self.distinct[rule.name]?.length != rule.length || self.distinct[rule.name]?.cap != cap {
                    self.distinct[rule.name] = DistinctWindowTable(length: rule.length, cap: cap)
                }
                return self.distinct[rule.name]?.record(key, value: value, now: now).map(Double.init)
            }
            if self.tables[rule.name]?.length != rule.length {
                // New, or its length changed in a reload: start counting afresh.
                self.tables[rule.name] = SlidingWindowTable(length: rule.length)
            }
            let local = self.tables[rule.name]?.record(key, now: now)
            guard rule.scope == .cluster, let wall, let local else {
                return local
            }
            // The cluster's count (this gateway's included); the local one if the shared
            // table is full. The larger: the cluster total read last may lag this gateway's own.
            let lengthMillis = rule.length.components.seconds * 1000 + rule.length.components.attoseconds / 1_000_000_000_000_000
            let shared = self.cluster.record(ClusterWindowCounts.Key(rule: rule.name, key: key), lengthMillis: lengthMillis, now: wall)
            return max(local, shared ?? 0)
        }
    }

    private let state = Mutex(State())
    /// Whether `scope: cluster` windows are shared (the gateway has a Redis); without, they
    /// count locally.
    let sharesClusterWindows: Bool
    /// Cluster window keys whose totals came back from Redis, since the start.
    let clusterItemsSynced = Atomic<Int>(0)

    init(sharesClusterWindows: Bool = false) {
        self.sharesClusterWindows = sharesClusterWindows
    }

    /// Wall-clock Unix milliseconds: cluster buckets are aligned on real time, so every
    /// gateway numbers them alike.
    static func wallMillis() -> Int64 {
        WallClock.milliseconds()
    }
    /// Bans in force, roughly (counted when made and lifted; a lapsed one is found on check):
    /// zero lets a request skip the lock.
    private let banCount = Atomic<Int>(0)

    /// Whether any ban may be in force (cheap: no lock).
    var hasBans: Bool {
        self.banCount.load(ordering: .relaxed) > 0
    }

    /// The ban holding `ip` or `account` at `now`, if any.
    func ban(ip: String, account: String?, now: MonotonicInstant) -> BanList.Ban? {
        guard self.banCount.load(ordering: .relaxed) > 0 else {
            return nil
        }
        return self.state.withLock { state in
            let ban = state.bans.check(.ip, ip, now: now) ?? account.flatMap { state.bans.check(.account, $0, now: now) }
            self.banCount.store(state.bans.count, ordering: .relaxed)
            return ban
        }
    }

    /// Counts a request of `ip` (and `account`) in each of `rules`. Windows in `shadow` mode count
    /// and report what they would have done in `shadowed`, without refusing.
    ///
    /// `pass` is the request's valid pass, if it showed one: over a `challenge_above` it lets the
    /// request through while its budget lasts (each such request spends one).
    func count(
        _ rules: [WindowRule],
        ip: String,
        account: String?,
        pass: PassToken? = nil,
        now: MonotonicInstant,
        shadowed: (WindowRule) -> Void
    ) -> Verdict {
        var shadowHits: [WindowRule] = []
        let wall = self.sharesClusterWindows && rules.contains { $0.scope == .cluster } ? Self.wallMillis() : nil
        // A pass's expiry is in Unix seconds.
        let passTime = pass == nil ? 0 : (wall ?? Self.wallMillis()) / 1000
        let verdict = self.state.withLock { state -> Verdict in
            var limited: WindowRule?
            var challenge: WindowRule?
            var challengedKey: (kind: BanList.Kind, key: String, threshold: Int)?
            for rule in rules {
                // What is counted, under which key, and what a ban would hold.
                let key: String
                var value: String?
                let kind: BanList.Kind
                switch rule.key {
                case .ip:
                    key = ip
                    kind = .ip
                case .account:
                    guard let account else {
                        continue
                    }
                    key = account
                    kind = .account
                case .accountsPerIP:
                    guard let account else {
                        continue
                    }
                    key = ip
                    value = account
                    kind = .ip
                case .ipsPerAccount:
                    guard let account else {
                        continue
                    }
                    key = account
                    value = ip
                    kind = .account
                }
                guard let estimate = state.record(rule, key: key, value: value, now: now, wall: wall) else {
                    // The table is full of live keys: a new key is refused (429), never banned,
                    // so filling the table cannot get other clients banned.
                    if rule.mode == .enforce, limited == nil {
                        limited = rule
                    }
                    continue
                }
                if let banAbove = rule.banAbove, estimate > Double(banAbove) {
                    if rule.mode == .shadow {
                        shadowHits.append(rule)
                        continue
                    }
                    let what = value == nil ? "requests" : (rule.key == .accountsPerIP ? "accounts" : "addresses")
                    let reason = "over \(banAbove) \(what) in \(DurationText.format(rule.length))"
                    state.bans.ban(kind, key, rule: rule.name, reason: reason, for: rule.banFor, now: now)
                    self.banCount.store(state.bans.count, ordering: .relaxed)
                    if self.sharesClusterWindows, state.banChanges.count < Self.maximumBanChanges, let ban = state.bans.current(kind, key, now: now) {
                        state.banChanges.append(.banned(kind, key, rule: rule.name, reason: reason, left: ban.until - now))
                    }
                    if let ban = state.bans.check(kind, key, now: now) {
                        return .banned(ban)
                    }
                } else if let limitAbove = rule.limitAbove, estimate > Double(limitAbove), limited == nil {
                    if rule.mode == .shadow {
                        shadowHits.append(rule)
                    } else {
                        limited = rule
                    }
                } else if let challengeAbove = rule.challengeAbove, estimate > Double(challengeAbove), challenge == nil {
                    if rule.mode == .shadow {
                        shadowHits.append(rule)
                    } else if let pass, state.passes.spend(pass, budget: rule.passBudget, now: passTime) {
                        continue
                    } else {
                        challenge = rule
                        challengedKey = (kind, key, challengeAbove)
                    }
                }
            }
            if let limited {
                return .limited(limited)
            }
            guard let challenge, let challengedKey else {
                return .pass
            }
            let reason = "over \(challengedKey.threshold) requests in \(DurationText.format(challenge.length)): challenged"
            state.challenged.ban(challengedKey.kind, challengedKey.key, rule: challenge.name, reason: reason, for: challenge.length, now: now)
            _ = state.challenged.check(challengedKey.kind, challengedKey.key, now: now)
            return .challenge(challenge)
        }
        shadowHits.forEach(shadowed)
        return verdict
    }

    /// Records a challenge handed out; `false` when the book is full.
    func issue(_ challenge: ChallengeBook.Challenge, now: MonotonicInstant) -> Bool {
        self.state.withLock { $0.challenges.issue(challenge, now: now) }
    }

    /// Checks a solution (the challenge is used up either way).
    func peek(id: String, client: String, now: MonotonicInstant) -> ChallengeBook.Challenge? {
        self.state.withLock { $0.challenges.peek(id: id, client: client, now: now) }
    }

    /// The characters of the open image CAPTCHA `id`, if there is one.
    func captchaAnswer(id: String, now: MonotonicInstant) -> String? {
        self.state.withLock { $0.challenges.answer(id: id, now: now) }
    }

    func redeem(id: String, nonce: String, client: String, now: MonotonicInstant) -> Result<ChallengeBook.Challenge, ChallengeBook.Refusal> {
        self.state.withLock { $0.challenges.redeem(id: id, nonce: nonce, client: client, now: now) }
    }

    /// Every ban in force.
    func bans(now: MonotonicInstant) -> [BanList.Ban] {
        self.state.withLock { $0.bans.list(now: now) }
    }

    /// The clients challenged within a window length of now (hits: challenges issued).
    func challenged(now: MonotonicInstant) -> [BanList.Ban] {
        self.state.withLock { $0.challenged.list(now: now) }
    }

    /// Records a pass just issued here, with its full budget.
    func issued(_ pass: PassToken, budget: Int) {
        let now = Self.wallMillis() / 1000
        self.state.withLock { _ = $0.passes.issued(pass, budget: budget, now: now) }
    }

    /// Passes unexpired with budget left (issued here, or shown here).
    func passesInUse() -> Int {
        let now = Self.wallMillis() / 1000
        return self.state.withLock { $0.passes.inUse(now: now) }
    }

    // MARK: Cluster bans

    /// The most unshared ban changes kept while Redis cannot be reached.
    static let maximumBanChanges = 100_000

    /// A ban made or lifted on this gateway, to be shared.
    enum BanChange: Sendable {
        case banned(BanList.Kind, String, rule: String, reason: String, left: Duration)
        case lifted(BanList.Kind, String)
    }

    /// The ban changes to publish now.
    func takeBanChanges() -> [BanChange] {
        self.state.withLock { state in
            defer { state.banChanges = [] }
            return state.banChanges
        }
    }

    /// Publishing failed: keep the changes for the next round.
    func restoreBanChanges(_ changes: [BanChange]) {
        self.state.withLock { $0.banChanges = Array((changes + $0.banChanges).suffix(Self.maximumBanChanges)) }
    }

    /// The shared list's version this gateway last applied.
    var sharedBansVersion: Int64? {
        self.state.withLock { $0.bansVersion }
    }

    /// Makes this gateway's bans agree with the shared list (`version`): bans listed there and
    /// not held here are made (with the time they have left); bans learnt earlier and no longer
    /// listed (lifted elsewhere) are lifted. Bans made here stay whatever the list says (they
    /// are published by the next round).
    func applySharedBans(_ shared: [ClusterBan], version: Int64, nowWall: Int64, now: MonotonicInstant) {
        self.state.withLock { state in
            var listed: Set<ClusterBan.Target> = []
            for ban in shared where ban.until > nowWall {
                listed.insert(ban.target)
                if state.bans.current(ban.kind, ban.key, now: now) == nil {
                    state.bans.ban(ban.kind, ban.key, rule: ban.rule, reason: ban.reason, for: .milliseconds(ban.until - nowWall), now: now)
                    state.learntBans.insert(ban.target)
                }
            }
            for target in state.learntBans.subtracting(listed) {
                state.bans.lift(target.kind, target.key)
                state.learntBans.remove(target)
            }
            state.bansVersion = version
            self.banCount.store(state.bans.count, ordering: .relaxed)
        }
    }

    // MARK: Cluster windows

    /// The cluster counts to send to Redis now (see `ClusterWindowCounts.takeSync`).
    func takeClusterSync(now: Int64) -> [ClusterWindowCounts.SyncItem] {
        self.state.withLock { $0.cluster.takeSync(now: now) }
    }

    /// Redis's totals for synced items; `nil` totals put an item's counts back for the next sync.
    func finishClusterSync(_ results: [(item: ClusterWindowCounts.SyncItem, totals: (current: Int, previous: Int)?)]) {
        defer { self.clusterItemsSynced.add(results.count { $0.totals != nil }, ordering: .relaxed) }
        self.state.withLock { state in
            for (item, totals) in results {
                if let totals {
                    state.cluster.applySync(item, current: totals.current, previous: totals.previous)
                } else {
                    state.cluster.restoreSync(item)
                }
            }
        }
    }

    /// Lifts a ban; returns whether there was one.
    func lift(_ kind: BanList.Kind, _ key: String) -> Bool {
        self.state.withLock { state in
            defer { self.banCount.store(state.bans.count, ordering: .relaxed) }
            let challenged = state.challenged.lift(kind, key)
            let lifted = state.bans.lift(kind, key)
            if lifted, self.sharesClusterWindows {
                state.banChanges.append(.lifted(kind, key))
                state.learntBans.remove(ClusterBan.Target(kind: kind, key: key))
            }
            return lifted || challenged
        }
    }

    /// Drops idle window entries and ended bans.
    func sweep(now: MonotonicInstant) {
        self.state.withLock { state in
            for name in Array(state.tables.keys) {
                state.tables[name]?.sweep(now: now)
            }
            for name in Array(state.distinct.keys) {
                state.distinct[name]?.sweep(now: now)
            }
            state.bans.sweep(now: now)
            state.challenged.sweep(now: now)
            state.challenges.sweep(now: now)
            state.cluster.sweep(now: Self.wallMillis())
            self.banCount.store(state.bans.count, ordering: .relaxed)
        }
    }
}

/// A sliding-window limit (`windows:` in the rule files): how many requests one client address
/// or one account may send to the routes that name it within `length`, and what happens above.
///
/// Above `challenge_above` a request without a valid pass is answered with a proof-of-work
/// challenge; above `limit_above` it is refused with 429; above `ban_above` the key is banned for
/// `ban_for` (every request refused with 403 until then). At least one of the three is set, in
/// increasing order when several are.
public struct WindowRule: Sendable, Hashable {
    /// What is counted.
    public enum Key: String, Sendable, Hashable, CaseIterable {
        /// The client address (after PROXY and `X-Forwarded-For` from trusted proxies).
        case ip
        /// The account (`identity:`); requests without one are not counted.
        case account
        /// How many distinct accounts one client address used (zombie accounts behind one
        /// address); above the thresholds the address is limited or banned.
        case accountsPerIP = "accounts_per_ip"
        /// How many distinct client addresses one account came from (an account driven from
        /// many machines); above the thresholds the account is limited or banned.
        case ipsPerAccount = "ips_per_account"

        /// Whether the key needs `identity:`.
        public var needsAccount: Bool {
            self != .ip
        }
    }

    public var name: String
    public var key: Key
    public var length: Duration
    /// Above this (the soft threshold), a request without a valid pass gets a challenge
    /// instead of going through.
    public var challengeAbove: Int?
    /// What kind of challenge: a proof-of-work (for scripts and browsers alike: the page
    /// solves it) or an image CAPTCHA (a person reads it).
    public enum ChallengeKind: String, Sendable, Hashable, CaseIterable {
        case pow
        case captcha
    }

    public var challenge: ChallengeKind = .pow

    /// Where the counts live.
    public enum Scope: String, Sendable, Hashable, CaseIterable {
        /// In this gateway only.
        case local
        /// Shared by every gateway on the configured Redis, synchronised in batches (every
        /// 250 ms): a client spread over several gateways is limited by its total. Without a
        /// Redis the window counts locally.
        case cluster
    }

    public var scope: Scope = .local
    /// Leading zero bits the proof-of-work asks for.
    public var difficulty: Int = 16
    /// How long a pass earned by a solution lasts.
    public var passFor: Duration = .seconds(300)
    /// Requests one pass lets through (so one solution cannot serve a botnet behind one address).
    public var passBudget: Int = Self.defaultPassBudget
    /// Requests a pass lets past a challenge unless the rule says otherwise.
    public static let defaultPassBudget = 20
    public var limitAbove: Int?
    public var banAbove: Int?
    public var banFor: Duration
    public var mode: InFlightPolicy.Mode
    public var file: String
    public var line: Int

    public init(
        name: String,
        key: Key = .ip,
        length: Duration = .seconds(10),
        limitAbove: Int? = nil,
        banAbove: Int? = nil,
        banFor: Duration = .seconds(600),
        mode: InFlightPolicy.Mode = .enforce,
        file: String,
        line: Int
    ) {
        self.name = name
        self.key = key
        self.length = length
        self.limitAbove = limitAbove
        self.banAbove = banAbove
        self.banFor = banFor
        self.mode = mode
        self.file = file
        self.line = line
    }
}

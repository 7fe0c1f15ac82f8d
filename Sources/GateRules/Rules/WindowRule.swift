/// A sliding-window limit (`windows:` in the rule files): how many requests one client address
/// or one account may send to the routes that name it within `length`, and what happens above.
///
/// Above `limit_above` a request is refused with 429; above `ban_above` the key is banned for
/// `ban_for` (every request refused with 403 until then). At least one of the two is set; with
/// both, `ban_above` is the larger.
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

import Foundation
import GateCore

/// A flash sale to replay: who comes (populations), when, how hard they push, and what they do
/// with a challenge. Read from a scenario file by `ScenarioDecoder`; `Tests/Scenarios/` holds
/// the shipped ones.
public struct Scenario: Sendable, Hashable {
    /// Shown in the report.
    public var name: String
    /// The purchase request every attempt sends.
    public var purchase = Purchase()
    /// The request header naming the account (the gateway's `identity.header`).
    public var accountHeader = "X-Account-Id"
    /// Whether a buyer pays the order it reserved (`POST /orders/ID/pay`).
    public var pay = true
    /// The whole replay stops after this long, finished or not.
    public var timeLimit: Duration = .seconds(300)
    /// At most this many connections open at once (over all populations); users wait their turn.
    public var maximumConnections = 2_000
    /// Each request's answer must come within this, or it counts as an error (`timeout`).
    public var requestTimeout: Duration = .seconds(10)
    public var populations: [Population] = []

    public init(name: String) {
        self.name = name
    }

    /// Users over every population.
    public var users: Int {
        self.populations.reduce(0) { $0 + $1.users }
    }

    /// The request a purchase attempt sends.
    public struct Purchase: Sendable, Hashable {
        public var method = "POST"
        public var path = "/buy/ticket"
        public var body = "{}"

        public init() {}
    }
}

/// One kind of visitor: real people, or one shape of bot.
public struct Population: Sendable, Hashable {
    public var name: String
    /// How many users (people, or bot workers) it has.
    public var users: Int
    /// Whether these are the real demand the sale is for (the report's "won by real users" and
    /// "undersold" count them).
    public var real = false
    public var accounts = Accounts.perUser
    public var addresses = AddressRange(first: IPv4(127, 1, 0, 1), count: 1)
    public var arrival = Arrival.atOnce
    /// When the first user comes, after the replay starts.
    public var startAfter: Duration = .zero
    /// Purchase attempts per user at most (a user stops once it holds a ticket, is told the
    /// sale is sold out, or is banned and gives up).
    public var attempts = 1
    /// Requests each attempt fires at once, each on its own connection (a bot's parallel burst).
    public var parallel = 1
    /// Pause between two attempts.
    public var think: Duration = .zero
    /// Whether a refusal's `Retry-After` is waited out before the next attempt (longer than `think`).
    public var honorRetryAfter = true
    /// Whether a user stops at its first ban (people do; bots keep hammering).
    public var stopWhenBanned = true
    public var challenges = ChallengeSolving.never

    public init(name: String, users: Int) {
        self.name = name
        self.users = users
    }

    /// Which account each user buys for.
    public enum Accounts: Sendable, Hashable {
        /// One account per user, `POPULATION-INDEX`.
        case perUser
        /// `count` accounts shared round-robin by the users (zombie accounts, or a bot farm).
        case shared(count: Int)
        /// No account header at all.
        case none
    }

    /// When users arrive.
    public enum Arrival: Sendable, Hashable {
        /// All at the start.
        case atOnce
        /// Spread evenly over the duration.
        case ramp(Duration)
        /// A Poisson process of `perSecond` users per second (exponential gaps).
        case poisson(perSecond: Double)
    }

    /// What a user does with a challenge.
    public enum ChallengeSolving: Sendable, Hashable {
        /// Gives up on the attempt (the next attempt may be challenged again).
        case never
        /// Solves: the proof of work really computed; an image CAPTCHA read and answered right
        /// `success` of the time (a person's error rate). `after` is the time a person takes.
        case solve(after: Duration, success: Double)
    }

    /// The account of user `index`, if it sends one.
    public func account(of index: Int) -> String? {
        switch self.accounts {
        case .perUser: "\(self.name)-\(index)"
        case .shared(let count): "\(self.name)-\(index % max(1, count))"
        case .none: nil
        }
    }

    /// The source address of user `index` (round-robin over the range).
    public func address(of index: Int) -> IPv4 {
        self.addresses.address(index % max(1, self.addresses.count))
    }

    /// When user `index` arrives after the replay starts; `uniform` is a number in [0, 1)
    /// (used by the Poisson arrival), `previous` the arrival of user `index - 1`.
    public func arrival(of index: Int, previous: Duration, uniform: Double) -> Duration {
        switch self.arrival {
        case .atOnce:
            return self.startAfter
        case .ramp(let over):
            return self.startAfter + over * (Double(index) / Double(max(1, self.users)))
        case .poisson(let perSecond):
            let gap = -Foundation.log(1 - uniform) / perSecond
            return (index == 0 ? self.startAfter : previous) + .nanoseconds(Int64(gap * 1e9))
        }
    }
}

/// An IPv4 address of the loopback network, as a number.
public struct IPv4: Sendable, Hashable, CustomStringConvertible {
    public let value: UInt32

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    public init(value: UInt32) {
        self.value = value
    }

    /// `text` as a dotted quad, or `nil`.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else {
            return nil
        }
        var value: UInt32 = 0
        for part in parts {
            guard part.count <= 3, let byte = UInt8(part) else {
                return nil
            }
            value = value << 8 | UInt32(byte)
        }
        self.value = value
    }

    public var description: String {
        "\(self.value >> 24).\(self.value >> 16 & 0xFF).\(self.value >> 8 & 0xFF).\(self.value & 0xFF)"
    }
}

/// `count` consecutive addresses from `first` (the gateway sees each as its own client).
public struct AddressRange: Sendable, Hashable {
    public let first: IPv4
    public let count: Int

    public init(first: IPv4, count: Int) {
        self.first = first
        self.count = count
    }

    /// The `index`th address of the range; addresses ending in .0 or .255 are skipped (some
    /// tools take them for network and broadcast addresses).
    public func address(_ index: Int) -> IPv4 {
        // Each block of 256 gives 254 usable addresses.
        let start = Int(self.first.value)
        let usableBefore = (start >> 8) * 254 + max(0, (start & 0xFF) - 1)
        let target = usableBefore + index
        return IPv4(value: UInt32((target / 254) << 8 | (target % 254 + 1)))
    }

    /// The last address used.
    public var last: IPv4 {
        self.address(self.count - 1)
    }

    /// Whether the two ranges have an address in common.
    public func overlaps(_ other: AddressRange) -> Bool {
        self.first.value <= other.last.value && other.first.value <= self.last.value
    }
}

extension AddressRange: CustomStringConvertible {
    public var description: String {
        self.count == 1 ? "\(self.first)" : "\(self.first)-\(self.last)"
    }
}

extension Duration {
    /// Seconds as a floating-point number.
    var seconds: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }
}

import GateCore

/// Which upstream a request goes to: a path (exact or prefix) and optionally a method.
///
/// Routes are tried in order (files by name, then the order within the file) and the first
/// that matches wins. The path is compared byte for byte with the request path as sent (no
/// percent-decoding, no dot-segment removal), without the query string.
public struct Route: Sendable, Hashable {
    /// How a route's path is compared with the request path.
    public enum Match: Sendable, Hashable {
        /// The request path equals this one.
        case exact(String)
        /// The request path starts with this one (`/api/` matches `/api/x`, not `/api`).
        case prefix(String)

        /// Whether `path` (without its query string) matches, byte for byte.
        public func matches(_ path: Substring) -> Bool {
            switch self {
            case .exact(let exact):
                return path.utf8.elementsEqual(exact.utf8)
            case .prefix(let prefix):
                return path.utf8.starts(with: prefix.utf8)
            }
        }
    }

    /// The method the request must have (case-sensitive, as HTTP says), or `nil` for any.
    public var method: String? {
        didSet {
            self.id = Self.id(method: self.method, match: self.match)
        }
    }
    /// The path the request must have.
    public var match: Match {
        didSet {
            self.id = Self.id(method: self.method, match: self.match)
        }
    }
    /// The route as a short text (`POST /buy/ticket`, `* /orders/*`): what passes and the
    /// sold-out latch are bound to. Made once, not per request.
    public private(set) var id: String
    /// The name of the upstream the request goes to.
    public var upstream: String
    /// Whether the route sells (a purchase): the anti-cheat rules are on by default for it.
    public var purchase: Bool
    /// One request in flight per account, when on (by default on purchase routes).
    public var inFlight: InFlightPolicy?
    /// Whether its requests go before others when the upstream is at its admission limit
    /// (`priority: high` for payments).
    public var priority: AdmissionPriority
    /// When the gateway answers "sold out" itself for this route, if ever.
    public var soldOut: SoldOutPolicy?
    /// The names of the sliding windows (`windows:`) that count this route's requests.
    public var windows: [String]
    /// Those windows' rules, looked up once when the rule set is compiled (not per request).
    public internal(set) var windowRules: [WindowRule] = []
    /// The rule file the route is in, by name within the rules directory.
    public var file: String
    /// The line it starts on, from 1.
    public var line: Int

    /// A route.
    public init(
        method: String? = nil,
        match: Match,
        upstream: String,
        purchase: Bool = false,
        inFlight: InFlightPolicy? = nil,
        windows: [String] = [],
        priority: AdmissionPriority = .normal,
        soldOut: SoldOutPolicy? = nil,
        file: String,
        line: Int
    ) {
        self.windows = windows
        self.priority = priority
        self.soldOut = soldOut
        self.method = method
        self.match = match
        self.id = Self.id(method: method, match: match)
        self.upstream = upstream
        self.purchase = purchase
        self.inFlight = inFlight
        self.file = file
        self.line = line
    }

    private static func id(method: String?, match: Match) -> String {
        switch match {
        case .exact(let path):
            return "\(method ?? "*") \(path)"
        case .prefix(let prefix):
            return "\(method ?? "*") \(prefix)*"
        }
    }

    /// Whether a request with `method` and `path` (without its query string) takes this route.
    public func matches(method: String, path: Substring) -> Bool {
        (self.method == nil || self.method == method) && self.match.matches(path)
    }

    /// Whether every request this route matches is matched by `self` first: `other` can never
    /// match when it comes after `self`.
    func covers(_ other: Route) -> Bool {
        guard self.method == nil || self.method == other.method else {
            return false
        }
        switch (self.match, other.match) {
        case (.exact(let path), .exact(let otherPath)):
            return path == otherPath
        case (.prefix(let prefix), .exact(let otherPath)), (.prefix(let prefix), .prefix(let otherPath)):
            return otherPath.hasPrefix(prefix)
        case (.exact, .prefix):
            return false
        }
    }
}

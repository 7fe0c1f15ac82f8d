import Crypto
import GateCore

/// The compiled rules the gateway runs with: the third stage, immutable, swapped in whole when
/// a reload compiles without a problem.
///
/// Built only by `RulesLoader` from files that passed decoding and validation, so it holds no
/// dangling reference: every route's upstream exists, every upstream has backends.
public struct RuleSet: Sendable {
    /// Names this compilation: the first 12 hex digits of a SHA-256 over the file names and
    /// contents, in order. Shown by `/rules`, logged on reload; the same files give the same
    /// version on every gateway.
    public let version: String
    /// The proxies whose forwarding headers are believed, from every file together.
    public let trustedProxies: TrustedProxies
    /// Client networks never limited per address or account (windows, bans, in-flight flags).
    public let allow: TrustedProxies
    /// Client networks refused outright.
    public let deny: TrustedProxies
    /// Where requests name their account, if the rules say.
    public let identity: AccountIdentity?
    /// The keys passes are signed with (`passes:`); `nil`: each gateway makes a random key at
    /// start, so a pass is honoured only by the gateway that issued it.
    public let passKeys: PassToken.Keyring?
    /// The sliding-window rules by name.
    public let windows: [String: WindowRule]
    /// The upstreams, sorted by name.
    public let upstreams: [Upstream]
    /// The routes in the order they are tried: files by name, then file order. When the files
    /// define no route and exactly one upstream, one route `prefix: /` to it.
    public let routes: [Route]
    private let upstreamIndex: [String: Int]

    /// No rules: no upstream, no route, no trusted proxy. What the gateway has before its rules
    /// first compile (and while it refuses traffic for that reason).
    public static let empty = RuleSet(files: [], lists: [:], version: RuleSet.version(of: []))

    /// Compiles `files`, which passed decoding and validation.
    init(files: [RuleFile], lists: [String: [CIDRBlock]], version: String) {
        self.version = version
        func blocks(_ entries: [RuleFile.ListEntry]) -> [CIDRBlock] {
            entries.flatMap { entry -> [CIDRBlock] in
                switch entry {
                case .block(let block):
                    return [block]
                case .file(let name, _):
                    return lists[name] ?? []
                }
            }
        }
        self.allow = TrustedProxies(blocks(files.flatMap(\.allow)))
        self.deny = TrustedProxies(blocks(files.flatMap(\.deny)))
        self.trustedProxies = TrustedProxies(files.flatMap(\.trustedProxies))
        self.identity = files.lazy.compactMap { $0.identity?.identity }.first
        self.passKeys = files.lazy.compactMap { $0.passes?.keyring }.first
        self.windows = Dictionary(files.flatMap(\.windows).compactMap(\.rule).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let entries = files.flatMap(\.upstreams).sorted { $0.name < $1.name }
        self.upstreams = entries.compactMap(\.upstream)
        self.upstreamIndex = Dictionary(uniqueKeysWithValues: self.upstreams.enumerated().map { ($0.element.name, $0.offset) })
        var routes = files.flatMap(\.routes).compactMap(\.route)
        if routes.isEmpty, entries.count == 1, let only = entries.first {
            routes = [Route(match: .prefix("/"), upstream: only.name, file: only.location.file, line: only.location.line)]
        }
        let windows = self.windows
        self.routes = routes.map { route in
            var route = route
            route.windowRules = route.windows.compactMap { windows[$0] }
            return route
        }
    }

    /// The version of rule files with these names and texts, in this order.
    static func version(of contents: [(name: String, text: String)]) -> String {
        var hash = SHA256()
        for file in contents {
            hash.update(data: Array("\(file.name)\0\(file.text.utf8.count)\0".utf8))
            hash.update(data: Array(file.text.utf8))
        }
        return hash.finalize().prefix(6).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// The first route that a request with `method` and `path` takes, or `nil` when none
    /// matches (the gateway answers `404`). `path` is the request target in origin form; what
    /// follows a `?` is ignored.
    public func route(method: String, path: String) -> Route? {
        self.routeIndex(method: method, path: path).map { self.routes[$0] }
    }

    /// Where in `routes` the route a request with `method` and `path` takes is, if any.
    public func routeIndex(method: String, path: String) -> Int? {
        // Byte-wise (a Character search would run grapheme breaking over every path).
        let pathOnly = path.utf8.firstIndex(of: UInt8(ascii: "?")).map { path[..<$0] } ?? path[...]
        return self.routes.firstIndex { $0.matches(method: method, path: pathOnly) }
    }

    /// The upstream called `name`, if there is one.
    public func upstream(named name: String) -> Upstream? {
        self.upstreamIndex[name].map { self.upstreams[$0] }
    }
}

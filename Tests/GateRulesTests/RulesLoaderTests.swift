import Foundation
import GateCore
import GateRules
import Testing

@Suite("Rule files")
struct RulesLoaderTests {
    private static func compile(_ files: [RuleText]) throws(RulesError) -> RuleSet {
        try RulesLoader.compile(files: files.map { ($0.name, $0.text) })
    }

    private static func compile(_ yaml: String) throws(RulesError) -> RuleSet {
        try Self.compile([RuleText(name: "rules.yaml", text: yaml)])
    }

    @Test("a minimal file gets every default, and a default route to its only upstream")
    func defaults() throws {
        let rules = try Self.compile("""
            upstreams:
              tickets:
                backends:
                  - address: 127.0.0.1:8081
            """)
        #expect(rules.trustedProxies.isEmpty)
        #expect(rules.upstreams == [Upstream(name: "tickets", backends: [Backend(endpoint: Endpoint(host: "127.0.0.1", port: 8081), weight: 1)])])
        let upstream = try #require(rules.upstreams.first)
        #expect(upstream.healthCheck == HealthCheck(path: "/health", interval: .seconds(2), timeout: .seconds(1)))
        #expect(upstream.health == BackendHealth.Configuration(
            rise: 2,
            fall: 3,
            ejectAfter: 5,
            ejection: .seconds(5),
            maximumEjection: .seconds(300),
            slowStart: .seconds(10)
        ))
        #expect(rules.routes == [Route(method: nil, match: .prefix("/"), upstream: "tickets", file: "rules.yaml", line: 2)])
        #expect(rules.route(method: "DELETE", path: "/anything?at=all")?.upstream == "tickets")
    }

    @Test("every key is read, files merge in order, upstreams sort by name")
    func everyField() throws {
        let first = RuleText(name: "10-upstreams.yaml", text: """
            trusted_proxies: [10.0.0.0/8, "2001:db8::/32"]
            upstreams:
              tickets:
                backends:
                  - address: 127.0.0.1:8081
                    weight: 1
                  - address: "[::1]:8082"
                    weight: 1000
                health_check:
                  path: /ready
                  interval: 5s
                  timeout: 5s
                  rise: 1
                  fall: 10
                passive:
                  eject_after: 3
                  ejection: 1s
                  max_ejection: 1m
                slow_start: 0s
              accounts:
                backends:
                  - address: accounts.internal:9000
            """)
        let second = RuleText(name: "20-routes.yaml", text: """
            trusted_proxies:
              - 127.0.0.1
            routes:
              - path: /buy/ticket
                method: POST
                upstream: tickets
              - prefix: /accounts/
                upstream: accounts
            """)
        let rules = try Self.compile([first, second])
        #expect(rules.trustedProxies.blocks.map(\.description) == ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1/32"])
        #expect(rules.upstreams.map(\.name) == ["accounts", "tickets"])
        #expect(rules.upstreams[0] == Upstream(name: "accounts", backends: [Backend(endpoint: Endpoint(host: "accounts.internal", port: 9000))]))
        #expect(rules.upstreams[1] == Upstream(
            name: "tickets",
            backends: [
                Backend(endpoint: Endpoint(host: "127.0.0.1", port: 8081), weight: 1),
                Backend(endpoint: Endpoint(host: "::1", port: 8082), weight: 1000),
            ],
            healthCheck: HealthCheck(path: "/ready", interval: .seconds(5), timeout: .seconds(5)),
            health: BackendHealth.Configuration(rise: 1, fall: 10, ejectAfter: 3, ejection: .seconds(1), maximumEjection: .seconds(60), slowStart: .zero)
        ))
        #expect(rules.routes == [
            Route(method: "POST", match: .exact("/buy/ticket"), upstream: "tickets", file: "20-routes.yaml", line: 4),
            Route(method: nil, match: .prefix("/accounts/"), upstream: "accounts", file: "20-routes.yaml", line: 7),
        ])
        #expect(rules.upstream(named: "tickets") == rules.upstreams[1])
        #expect(rules.upstream(named: "ticket") == nil)
    }

    @Test("the version hashes names and contents: same files, same version; any change, another")
    func version() throws {
        let file = RuleText(name: "a.yaml", text: "upstreams:\n  t:\n    backends:\n      - address: 127.0.0.1:1\n")
        let version = try Self.compile([file]).version
        #expect(version.count == 12)
        #expect(version.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(try Self.compile([file]).version == version)
        #expect(try Self.compile([RuleText(name: "b.yaml", text: file.text)]).version != version)
        #expect(try Self.compile([RuleText(name: "a.yaml", text: file.text + "# edited\n")]).version != version)
        #expect(RuleSet.empty.version == "e3b0c44298fc")
        #expect(RuleSet.empty.upstreams.isEmpty && RuleSet.empty.routes.isEmpty && RuleSet.empty.trustedProxies.isEmpty)
        #expect(RuleSet.empty.route(method: "GET", path: "/") == nil)
    }

    static let matchingRules = """
        upstreams:
          a:
            backends: [{address: "127.0.0.1:1"}]
          b:
            backends: [{address: "127.0.0.1:2"}]
        routes:
          - path: /buy/ticket
            method: POST
            upstream: a
          - prefix: /orders/
            upstream: b
          - path: /buy/ticket
            upstream: b
          - prefix: /
            method: GET
            upstream: a
        """

    @Test("the first matching route wins; exact, prefix, method, query string ignored", arguments: [
        ("POST", "/buy/ticket", 7 as Int?),
        ("POST", "/buy/ticket?account=1", 7),
        ("GET", "/buy/ticket", 12),
        ("PUT", "/buy/ticket?x", 12),
        ("post", "/buy/ticket", 12),
        ("POST", "/buy/ticket/", nil),
        ("POST", "/buy/tickets", nil),
        ("GET", "/orders/17/pay", 10),
        ("POST", "/orders/17/pay", 10),
        ("POST", "/orders", nil),
        ("GET", "/orders", 14),
        ("GET", "/?q=/orders/", 14),
        ("GET", "", nil),
        ("DELETE", "/stock", nil),
    ])
    func routing(method: String, path: String, line: Int?) throws {
        let rules = try Self.compile(Self.matchingRules)
        #expect(rules.route(method: method, path: path)?.line == line)
    }

    @Test("load reads *.yaml and *.yml in name order, skips the rest, names files by path")
    func loadDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("b.yml", "routes:\n  - prefix: /\n    upstream: tickets\n")
        try directory.write("a.yaml", "upstreams:\n  tickets:\n    backends:\n      - address: 127.0.0.1:8081\n")
        try directory.write("notes.txt", "not: [rules")
        try directory.write(".#a.yaml", "not: [rules")
        try FileManager.default.createDirectory(atPath: directory.path + "/old.yaml", withIntermediateDirectories: false)
        let rules = try RulesLoader.load(directory: directory.path)
        #expect(rules.routes == [Route(match: .prefix("/"), upstream: "tickets", file: "b.yml", line: 2)])
        let expected = try Self.compile([
            RuleText(name: "a.yaml", text: "upstreams:\n  tickets:\n    backends:\n      - address: 127.0.0.1:8081\n"),
            RuleText(name: "b.yml", text: "routes:\n  - prefix: /\n    upstream: tickets\n"),
        ])
        #expect(rules.version == expected.version)

        try directory.write("c.yaml", "routes:\n  - prefix: /x\n    upstream: tickest\n")
        let error = #expect(throws: RulesError.self) { try RulesLoader.load(directory: directory.path) }
        #expect(error?.diagnostics.map(\.description) == [
            "\(directory.path)/c.yaml:2:5: routes[0]: this route never matches: the route at b.yml:2 (routes[0]) matches every request it would, and comes first (hint: move this route above that one, or remove it)",
            "\(directory.path)/c.yaml:3:15: routes[0].upstream: no upstream is named 'tickest' (hint: did you mean 'tickets'?)",
        ])
    }

    @Test("a missing directory, and one without rule files, are errors")
    func emptyDirectory() throws {
        let missing = #expect(throws: RulesError.self) { try RulesLoader.load(directory: "/nonexistent/rules") }
        #expect(missing?.description == "/nonexistent/rules: no such directory (hint: give the directory that holds the *.yaml rule files)")
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("README.md", "# rules\n")
        let empty = #expect(throws: RulesError.self) { try RulesLoader.load(directory: directory.path) }
        #expect(empty?.diagnostics.map(\.message) == ["no *.yaml files in \(directory.path)"])
    }

    @Test("identity and per-account rules: purchase routes get one request in flight by default")
    func accountRules() throws {
        let rules = try Self.compile("""
            identity:
              header: X-Account-Id
            upstreams:
              tickets:
                backends: [{address: '127.0.0.1:8081'}]
            routes:
              - path: /buy
                method: POST
                upstream: tickets
                purchase: true
              - path: /pay
                upstream: tickets
                in_flight: {mode: shadow, ttl: 5s, store: lua, on_store_error: closed}
              - path: /refund
                upstream: tickets
                purchase: true
                in_flight: false
              - prefix: /
                upstream: tickets
            """)
        #expect(rules.identity == AccountIdentity(header: "X-Account-Id", trust: .proxies, file: "rules.yaml", line: 2))
        #expect(rules.routes.map(\.inFlight) == [
            InFlightPolicy(mode: .enforce, ttl: .seconds(30)),
            InFlightPolicy(mode: .shadow, ttl: .seconds(5), store: .lua, onStoreError: .closed),
            nil,
            nil,
        ])
        #expect(rules.routes.map(\.purchase) == [true, false, true, false])
        let clients = try Self.compile("identity: {header: X-User, trust: clients}\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n")
        #expect(clients.identity?.trust == .clients)
        #expect(try Self.compile("upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n").identity == nil)
    }

    static let upstreamOnly = "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n"
    static let secret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-0123456789\n"
    static let publicKeyPEM = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1y7JA/bE0UULbcBlK6BWzmuDjN8K
        A30jQNRUP+jTKb58131b394f12tC7bOMy7qpklT8eyNM2L4kAStNT3whGA==
        -----END PUBLIC KEY-----

        """

    @Test("identity from a JWT: the key files named are read from the rules directory, the token checked with them")
    func jwtIdentity() throws {
        let rules = try Self.compile([
            RuleText(name: "rules.yaml", text: "identity:\n  jwt:\n    keys: [login.key, login.pem]\n    issuer: https://login.example\n    audience: tickets\n    leeway: 5s\n" + Self.upstreamOnly),
            RuleText(name: "login.key", text: Self.secret),
            RuleText(name: "login.pem", text: Self.publicKeyPEM),
        ])
        guard case .jwt(let verifier, let cookie) = rules.identity?.source else {
            Issue.record("expected a JWT identity, got \(String(describing: rules.identity))")
            return
        }
        #expect(cookie == nil)
        #expect(rules.identity?.header == "Authorization")
        #expect(verifier.keys.map(\.kind) == [.hs256, .es256])
        #expect(verifier.issuer == "https://login.example" && verifier.audience == "tickets" && verifier.leeway == 5)
        // The secret is the file's text without its trailing newline.
        let token = JWTSigner.hs256(
            claims: JWTSigner.claims(subject: "alice", expires: 2_000_000_000, issuer: "https://login.example", audience: "tickets"),
            secret: Array(Self.secret.dropLast().utf8)
        )
        #expect(try verifier.subject(of: token, now: 1_900_000_000).get() == "alice")
    }

    @Test("pass keys from key files: the first signs, every one verifies")
    func passKeys() throws {
        let rules = try Self.compile([
            RuleText(name: "rules.yaml", text: "passes:\n  keys: [pass-2026.key, pass-2025.key]\n" + Self.upstreamOnly),
            RuleText(name: "pass-2026.key", text: Self.secret),
            RuleText(name: "pass-2025.key", text: String(Self.secret.reversed())),
        ])
        let keyring = try #require(rules.passKeys)
        #expect(keyring.current == "pass-2026")
        let client = try #require(IPAddress("203.0.113.9"))
        let old = PassToken(keyID: "pass-2025", expires: 2_000_000_000, prefix: PassToken.prefix(of: client), route: "r", nonce: "n1").encoded(with: keyring)
        #expect(throws: Never.self) { try PassToken.verify(old, keyring: keyring, client: client, route: "r", now: 1_900_000_000).get() }
        #expect(try Self.compile(Self.upstreamOnly).passKeys == nil)
    }

    @Test("identity from a signed cookie")
    func signedCookieIdentity() throws {
        let rules = try Self.compile([
            RuleText(name: "rules.yaml", text: "identity:\n  signed_cookie: {name: sg_account, keys: [cookie.key]}\n" + Self.upstreamOnly),
            RuleText(name: "cookie.key", text: Self.secret),
        ])
        guard case .signedCookie(let cookie, let name) = rules.identity?.source else {
            Issue.record("expected a signed-cookie identity, got \(String(describing: rules.identity))")
            return
        }
        #expect(name == "sg_account")
        let value = SignedCookie.make(account: "bob", expires: 2_000_000_000, key: .hmac(secret: Array(Self.secret.dropLast().utf8), name: "x"))
        #expect(try cookie.account(of: value, now: 1_900_000_000).get() == "bob")
    }

    @Test("windows: per-ip and per-account sliding windows named by routes")
    func windows() throws {
        let rules = try Self.compile("""
            identity: {header: X-Account-Id}
            windows:
              ip-burst:
                length: 10s
                limit_above: 20
                ban_above: 50
                ban_for: 15m
              account-burst:
                key: account
                ban_above: 5
                mode: shadow
            upstreams:
              t:
                backends: [{address: '127.0.0.1:1'}]
            routes:
              - path: /buy
                upstream: t
                windows: [ip-burst, account-burst]
            """)
        #expect(rules.windows["ip-burst"] == WindowRule(
            name: "ip-burst", key: .ip, length: .seconds(10), limitAbove: 20, banAbove: 50, banFor: .seconds(900), file: "rules.yaml", line: 3
        ))
        #expect(rules.windows["account-burst"] == WindowRule(
            name: "account-burst", key: .account, banAbove: 5, mode: .shadow, file: "rules.yaml", line: 8
        ))
        #expect(rules.routes.first?.windows == ["ip-burst", "account-burst"])
    }

    @Test("overload keys: a backend's max_in_flight, a route's priority and its sold-out latch")
    func overloadKeys() throws {
        let rules = try Self.compile("""
            upstreams:
              t:
                backends:
                  - address: 127.0.0.1:1
                    max_in_flight: 10
                  - address: 127.0.0.1:2
            routes:
              - path: /buy/ticket
                upstream: t
                sold_out: {json_code: -1, header: X-Sold-Out, stock: {sale: demo}, recheck: 500ms}
              - prefix: /orders/
                upstream: t
                priority: high
              - path: /stock
                upstream: t
                sold_out: {stock: {key: "{s}:meta", total: cap, sold: taken}}
            """)
        #expect(rules.upstreams[0].backends.map(\.maximumInFlight) == [10, nil])
        #expect(rules.routes.map(\.priority) == [.normal, .high, .normal])
        #expect(rules.routes[0].soldOut == SoldOutPolicy(jsonCode: -1, header: "X-Sold-Out", stock: .sale("demo"), recheck: .milliseconds(500)))
        #expect(rules.routes[0].soldOut?.stock?.key == "{sale:demo}:meta")
        #expect(rules.routes[1].soldOut == nil)
        #expect(rules.routes[2].soldOut == SoldOutPolicy(stock: SoldOutPolicy.Stock(key: "{s}:meta", totalField: "cap", soldField: "taken")))
        #expect(rules.routes[0].id == "* /buy/ticket")
    }

    @Test("allow and deny lists: inline networks and *.list files")
    func lists() throws {
        let rules = try Self.compile([
            RuleText(name: "rules.yaml", text: "deny: [203.0.113.0/24, {file: blocked.list}]\nallow: [10.1.0.0/16]\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n"),
            RuleText(name: "blocked.list", text: "# scalper farm\n198.51.100.7\n\n2001:db8::/32   # a hosting range\n"),
        ])
        #expect(rules.deny.contains(IPAddress("203.0.113.9")!))
        #expect(rules.deny.contains(IPAddress("198.51.100.7")!))
        #expect(rules.deny.contains(IPAddress("2001:db8::1")!))
        #expect(!rules.deny.contains(IPAddress("198.51.100.8")!))
        #expect(rules.allow.contains(IPAddress("10.1.2.3")!))
    }

    static let badFixtures: [BadFixture] = [
        BadFixture(
            "a backend's max_in_flight of zero",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1', max_in_flight: 0}]\n",
            line: 3, path: "upstreams.t.backends[0].max_in_flight", message: "0 is out of range", hint: "from 1 to 1000000"
        ),
        BadFixture(
            "a priority that is not one",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - prefix: /\n    upstream: t\n    priority: urgent\n",
            line: 7, path: "routes[0].priority", message: "priority 'urgent' is not one of high, normal"
        ),
        BadFixture(
            "a sold-out latch with no signal",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - prefix: /\n    upstream: t\n    sold_out: {recheck: 1s}\n",
            line: 7, path: "routes[0].sold_out", message: "sold_out says neither how a backend tells it", hint: "json_code: -1"
        ),
        BadFixture(
            "a stock naming both a sale and a key",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - prefix: /\n    upstream: t\n    sold_out: {stock: {sale: a, key: b}}\n",
            line: 7, path: "routes[0].sold_out.stock", message: "either a sale or a key"
        ),
        BadFixture(
            "a sold-out code that is not a number",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - prefix: /\n    upstream: t\n    sold_out: {json_code: minus-one}\n",
            line: 7, path: "routes[0].sold_out.json_code", message: "expected a whole number, found a string"
        ),
        BadFixture(
            "a list file with a bad line",
            files: [
                RuleText(name: "rules.yaml", text: "deny: [{file: blocked.list}]\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n"),
                RuleText(name: "blocked.list", text: "198.51.100.7\n198.51.100.300\n"),
            ],
            file: "blocked.list", line: 2, path: "", message: "'198.51.100.300' is not a network"
        ),
        BadFixture(
            "a list naming a file that is not there",
            "deny: [{file: blockd.list}]\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 1, path: "deny[0].file", message: "no list file 'blockd.list' in the rules directory"
        ),
        BadFixture(
            "a list naming a file outside the rules directory",
            "allow: [{file: /etc/passwd}]\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 1, path: "allow[0].file", message: "'/etc/passwd' is not a list file of the rules directory"
        ),
        BadFixture(
            "a route naming an unknown window",
            "windows:\n  burst: {limit_above: 5}\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - path: /buy\n    upstream: t\n    windows: [brust]\n",
            line: 9, path: "routes[0].windows[0]", message: "no window is named 'brust'", hint: "did you mean 'burst'?"
        ),
        BadFixture(
            "a window that neither limits nor bans",
            "windows:\n  burst: {length: 5s}\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 2, path: "windows.burst", message: "window 'burst' neither challenges, limits nor bans"
        ),
        BadFixture(
            "a challenge threshold above the limit",
            "windows:\n  burst:\n    challenge_above: 30\n    limit_above: 20\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 3, path: "windows.burst.challenge_above", message: "challenge_above (30) is not below limit_above (20)"
        ),
        BadFixture(
            "a challenge nobody could solve",
            "windows:\n  burst:\n    challenge_above: 3\n    difficulty: 40\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 4, path: "windows.burst.difficulty", message: "40"
        ),
        BadFixture(
            "a ban threshold under the limit",
            "windows:\n  burst:\n    limit_above: 50\n    ban_above: 20\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 4, path: "windows.burst.ban_above", message: "ban_above (20) is not above limit_above (50)"
        ),
        BadFixture(
            "an account window without an identity",
            "windows:\n  per-account: {key: account, limit_above: 3}\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 2, path: "windows.per-account", message: "counts per account, but no rule file says where the account is"
        ),
        BadFixture(
            "a window key misspelt",
            "windows:\n  burst: {key: adress, limit_above: 3}\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 2, path: "windows.burst.key", message: "key 'adress' is not one of ip, account"
        ),
        BadFixture(
            "a window defined in two files",
            files: [
                RuleText(name: "a.yaml", text: "windows:\n  burst: {limit_above: 3}\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n"),
                RuleText(name: "b.yaml", text: "windows:\n  burst: {limit_above: 4}\n"),
            ],
            file: "b.yaml", line: 2, path: "windows.burst", message: "window 'burst' is already defined at a.yaml:2"
        ),
        BadFixture(
            "identity without a header",
            "identity:\n  trust: proxies\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 2, path: "identity", message: "required key 'header' is missing"
        ),
        BadFixture(
            "identity naming a key file that is not there",
            files: [RuleText(name: "rules.yaml", text: "identity:\n  jwt:\n    keys: [logn.key]\n" + upstreamOnly), RuleText(name: "login.key", text: secret)],
            file: "rules.yaml", line: 3, path: "identity.jwt.keys[0]", message: "no key file 'logn.key' in the rules directory", hint: "did you mean 'login.key'?"
        ),
        BadFixture(
            "an HMAC secret too short to be safe",
            files: [RuleText(name: "rules.yaml", text: "identity:\n  jwt: {keys: [short.key]}\n" + upstreamOnly), RuleText(name: "short.key", text: "password\n")],
            file: "rules.yaml", line: 2, path: "identity.jwt.keys[0]", message: "'short.key' holds 8 bytes; an HMAC-SHA256 secret needs at least 32"
        ),
        BadFixture(
            "a public key file that holds no P-256 key",
            files: [RuleText(name: "rules.yaml", text: "identity:\n  jwt: {keys: [signer.pem]}\n" + upstreamOnly), RuleText(name: "signer.pem", text: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")],
            file: "rules.yaml", line: 2, path: "identity.jwt.keys[0]", message: "'signer.pem' is not a P-256 public key in PEM form"
        ),
        BadFixture(
            "a signed cookie with a public key",
            files: [RuleText(name: "rules.yaml", text: "identity:\n  signed_cookie: {name: sg_account, keys: [signer.pem]}\n" + upstreamOnly), RuleText(name: "signer.pem", text: publicKeyPEM)],
            file: "rules.yaml", line: 2, path: "identity.signed_cookie.keys[0]", message: "'signer.pem' is not a key file name", hint: "NAME.key (an HMAC secret)"
        ),
        BadFixture(
            "a key file outside the rules directory",
            "identity:\n  jwt: {keys: [/etc/ssl/private/login.key]}\n" + upstreamOnly,
            line: 2, path: "identity.jwt.keys[0]", message: "'/etc/ssl/private/login.key' is not a key file name"
        ),
        BadFixture(
            "identity with both a header and a JWT",
            "identity:\n  header: X-Account-Id\n  jwt: {keys: [login.key]}\n" + upstreamOnly,
            line: 2, path: "identity", message: "identity has header and jwt; write one"
        ),
        BadFixture(
            "trust on a signed identity",
            files: [RuleText(name: "rules.yaml", text: "identity:\n  trust: clients\n  jwt: {keys: [login.key]}\n" + upstreamOnly), RuleText(name: "login.key", text: secret)],
            file: "rules.yaml", line: 2, path: "identity.trust", message: "trust applies to header: only"
        ),
        BadFixture(
            "a JWT identity without keys",
            "identity:\n  jwt: {issuer: https://login.example}\n" + upstreamOnly,
            line: 2, path: "identity.jwt", message: "required key 'keys' is missing"
        ),
        BadFixture(
            "a signed cookie with no usable cookie name",
            files: [RuleText(name: "rules.yaml", text: "identity:\n  signed_cookie: {name: 'sg account', keys: [cookie.key]}\n" + upstreamOnly), RuleText(name: "cookie.key", text: secret)],
            file: "rules.yaml", line: 2, path: "identity.signed_cookie.name", message: "'sg account' is not a cookie name"
        ),
        BadFixture(
            "a distinct-count window shared through the cluster",
            "identity: {header: X-Account-Id}\nwindows:\n  zombies: {key: accounts_per_ip, ban_above: 10, scope: cluster}\n" + upstreamOnly,
            line: 3, path: "windows.zombies.scope", message: "scope cluster counts requests; accounts_per_ip counts distinct values and stays local"
        ),
        BadFixture(
            "a window scope that does not exist",
            "windows:\n  burst: {limit_above: 10, scope: global}\n" + upstreamOnly,
            line: 2, path: "windows.burst.scope", message: "scope 'global' is not one of local, cluster"
        ),
        BadFixture(
            "a pass key file that is not there",
            files: [RuleText(name: "rules.yaml", text: "passes: {keys: [pass-2026.key]}\n" + upstreamOnly), RuleText(name: "pass-2025.key", text: secret)],
            file: "rules.yaml", line: 1, path: "passes.keys[0]", message: "no key file 'pass-2026.key' in the rules directory", hint: "pass-2025.key"
        ),
        BadFixture(
            "a pass key whose id would hold a dot",
            files: [RuleText(name: "rules.yaml", text: "passes: {keys: [pass.2026.key]}\n" + upstreamOnly), RuleText(name: "pass.2026.key", text: secret)],
            file: "rules.yaml", line: 1, path: "passes.keys[0]", message: "a pass key's id is its file name without .key, and may hold no dot"
        ),
        BadFixture(
            "passes written in two files",
            files: [
                RuleText(name: "a.yaml", text: "passes: {keys: [p.key]}\n" + upstreamOnly),
                RuleText(name: "b.yaml", text: "passes: {keys: [p.key]}\n"),
                RuleText(name: "p.key", text: secret),
            ],
            file: "b.yaml", line: 1, path: "passes", message: "passes is already defined at a.yaml:1"
        ),
        BadFixture(
            "identity header that is no header name",
            "identity:\n  header: X Account\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 2, path: "identity.header", message: "'X Account' is not a header name"
        ),
        BadFixture(
            "identity trusted from nobody known",
            "identity:\n  header: X-Account-Id\n  trust: everyone\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 3, path: "identity.trust", message: "trust 'everyone' is not one of proxies, clients"
        ),
        BadFixture(
            "identity written in two files",
            files: [
                RuleText(name: "a.yaml", text: "identity: {header: X-A}\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n"),
                RuleText(name: "b.yaml", text: "identity: {header: X-B}\n"),
            ],
            file: "b.yaml", line: 1, path: "identity", message: "identity is already defined at a.yaml:1"
        ),
        BadFixture(
            "a purchase route with no identity anywhere",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - path: /buy\n    upstream: t\n    purchase: true\n",
            line: 5, path: "routes[0]", message: "no rule file says where the account is", hint: "in_flight: false"
        ),
        BadFixture(
            "in_flight mode misspelt",
            "identity: {header: X-A}\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - path: /buy\n    upstream: t\n    in_flight: {mode: enforced}\n",
            line: 8, path: "routes[0].in_flight.mode", message: "mode 'enforced' is not one of enforce, shadow", hint: "did you mean 'enforce'?"
        ),
        BadFixture(
            "in_flight store misspelt",
            "identity: {header: X-A}\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - path: /buy\n    upstream: t\n    in_flight: {store: nx}\n",
            line: 8, path: "routes[0].in_flight.store", message: "store 'nx' is not one of watch, setnx, lua"
        ),
        BadFixture(
            "in_flight on_store_error unknown",
            "identity: {header: X-A}\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - path: /buy\n    upstream: t\n    in_flight: {on_store_error: closd}\n",
            line: 8, path: "routes[0].in_flight.on_store_error", message: "on_store_error 'closd' is not one of local, open, closed", hint: "did you mean 'closed'?"
        ),
        BadFixture(
            "in_flight with a zero ttl",
            "identity: {header: X-A}\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - path: /buy\n    upstream: t\n    in_flight: {ttl: 0s}\n",
            line: 8, path: "routes[0].in_flight.ttl", message: "must be longer than 0s"
        ),
        BadFixture(
            "purchase that is not a boolean",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - path: /buy\n    upstream: t\n    purchase: sometimes\n",
            line: 7, path: "routes[0].purchase", message: "expected true or false"
        ),
        BadFixture(
            "route to an unknown upstream",
            "upstreams:\n  tickets:\n    backends:\n      - address: 127.0.0.1:8081\nroutes:\n  - prefix: /\n    upstream: tikets\n",
            line: 7, path: "routes[0].upstream", message: "no upstream is named 'tikets'", hint: "did you mean 'tickets'?"
        ),
        BadFixture(
            "route to an upstream nothing like any",
            "upstreams:\n  tickets:\n    backends:\n      - address: 127.0.0.1:8081\nroutes:\n  - prefix: /\n    upstream: accounts\n",
            line: 7, path: "routes[0].upstream", message: "no upstream is named 'accounts'", hint: "upstreams: tickets"
        ),
        BadFixture(
            "upstream defined in two files",
            files: [
                RuleText(name: "a.yaml", text: "upstreams:\n  tickets:\n    backends:\n      - address: 127.0.0.1:8081\n"),
                RuleText(name: "b.yaml", text: "# more\nupstreams:\n  tickets:\n    backends:\n      - address: 127.0.0.1:8082\n"),
            ],
            file: "b.yaml", line: 3, path: "upstreams.tickets", message: "upstream 'tickets' is already defined at a.yaml:2"
        ),
        BadFixture("no backends", "upstreams:\n  tickets:\n    backends: []\n", line: 3, path: "upstreams.tickets.backends", message: "at least one backend"),
        BadFixture("backends key missing", "upstreams:\n  tickets:\n    slow_start: 1s\n", line: 3, path: "upstreams.tickets", message: "required key 'backends' is missing"),
        BadFixture(
            "backend listed twice",
            "upstreams:\n  tickets:\n    backends:\n      - address: 127.0.0.1:8081\n      - address: 127.0.0.1:8081\n        weight: 2\n",
            line: 5, path: "upstreams.tickets.backends[1].address", message: "backend 127.0.0.1:8081 is listed twice (first at upstreams.tickets.backends[0].address, line 4)"
        ),
        BadFixture(
            "weight out of range",
            "upstreams:\n  tickets:\n    backends:\n      - address: 127.0.0.1:8081\n        weight: 1001\n",
            line: 5, path: "upstreams.tickets.backends[0].weight", message: "1001 is out of range", hint: "from 1 to 1000"
        ),
        BadFixture(
            "backend on port 0",
            "upstreams:\n  tickets:\n    backends:\n      - address: 127.0.0.1:0\n",
            line: 4, path: "upstreams.tickets.backends[0].address", message: "port 0 is not allowed here"
        ),
        BadFixture(
            "CIDR with host bits",
            "trusted_proxies: [10.0.0.0/8, 10.0.0.1/8]\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 1, path: "trusted_proxies[1]", message: "'10.0.0.1/8' is not a CIDR block", hint: "write 10.0.0.0/8 for the network"
        ),
        BadFixture(
            "route path without a slash",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - path: api/purchase\n    upstream: t\n",
            line: 5, path: "routes[0].path", message: "'api/purchase' does not start with '/'", hint: "/api/purchase"
        ),
        BadFixture(
            "route path with a query",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - prefix: /search?q=\n    upstream: t\n",
            line: 5, path: "routes[0].prefix", message: "has '?'", hint: "query string is ignored"
        ),
        BadFixture(
            "method not a token",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - path: /buy\n    method: GET POST\n    upstream: t\n",
            line: 6, path: "routes[0].method", message: "'GET POST' is not an HTTP method"
        ),
        BadFixture(
            "method in lower case",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - path: /buy\n    method: post\n    upstream: t\n",
            line: 6, path: "routes[0].method", message: "HTTP methods are case-sensitive", hint: "write POST"
        ),
        BadFixture(
            "both path and prefix",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - path: /a\n    prefix: /\n    upstream: t\n",
            line: 5, path: "routes[0]", message: "either path or prefix, not both"
        ),
        BadFixture(
            "neither path nor prefix",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - upstream: t\n",
            line: 5, path: "routes[0]", message: "a route needs path or prefix"
        ),
        BadFixture(
            "misspelt health-check key",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n    health_check:\n      intervall: 3s\n",
            line: 5, path: "upstreams.t.health_check.intervall", message: "unknown key 'intervall'", hint: "did you mean 'interval'?"
        ),
        BadFixture(
            "health-check timeout longer than interval",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n    health_check:\n      interval: 1s\n      timeout: 2s\n",
            line: 6, path: "upstreams.t.health_check.timeout", message: "the timeout (2s) is longer than the interval (1s)"
        ),
        BadFixture(
            "rise of zero",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n    health_check:\n      rise: 0\n",
            line: 5, path: "upstreams.t.health_check.rise", message: "0 is out of range", hint: "from 1 to 100"
        ),
        BadFixture(
            "max ejection shorter than the first",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n    passive:\n      ejection: 10s\n      max_ejection: 5s\n",
            line: 6, path: "upstreams.t.passive.max_ejection", message: "max_ejection (5s) is shorter than the first ejection (10s)"
        ),
        BadFixture(
            "slow start without a unit",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n    slow_start: 10\n",
            line: 4, path: "upstreams.t.slow_start", message: "has no unit", hint: "write a duration such as 2s or 500ms"
        ),
        BadFixture(
            "upstream name with a space",
            "upstreams:\n  ticket nodes:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 2, path: "upstreams.ticket nodes", message: "has characters other than letters"
        ),
        BadFixture(
            "route shadowed by an earlier prefix",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - prefix: /api/\n    upstream: t\n  - path: /api/purchase\n    method: POST\n    upstream: t\n",
            line: 7, path: "routes[1]", message: "this route never matches: the route at rules.yaml:5 (routes[0])"
        ),
        BadFixture(
            "no upstream anywhere",
            "trusted_proxies: [10.0.0.0/8]\n",
            file: "", line: 0, path: "upstreams", message: "no upstream is defined in any rule file"
        ),
        BadFixture(
            "two upstreams and no routes",
            "upstreams:\n  a:\n    backends: [{address: '127.0.0.1:1'}]\n  b:\n    backends: [{address: '127.0.0.1:2'}]\n",
            file: "", line: 0, path: "routes", message: "2 upstreams but no routes", hint: "a, b"
        ),
        BadFixture(
            "unknown top-level key",
            "upstream:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 1, path: "upstream", message: "unknown key 'upstream'", hint: "did you mean 'upstreams'?"
        ),
        BadFixture(
            "misspelt required key, reported once",
            "upstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\nroutes:\n  - prefix: /\n    upstreams: t\n",
            line: 6, path: "routes[0].upstreams", message: "unknown key 'upstreams'", hint: "did you mean 'upstream'?"
        ),
        BadFixture(
            "trusted proxies not a list",
            "trusted_proxies: 10.0.0.0/8\nupstreams:\n  t:\n    backends: [{address: '127.0.0.1:1'}]\n",
            line: 1, path: "trusted_proxies", message: "expected a list, found a string"
        ),
    ]

    @Test("each bad rule file gets the diagnostic it deserves", arguments: Self.badFixtures)
    func refuses(fixture: BadFixture) {
        let error = #expect(throws: RulesError.self) { try Self.compile(fixture.files) }
        fixture.check(error?.diagnostics ?? [])
    }

    @Test("every problem across files is reported at once; a broken upstream still counts as defined, a broken route's upstream is still checked")
    func everyProblem() {
        let error = #expect(throws: RulesError.self) {
            try Self.compile([
                RuleText(name: "a.yaml", text: "upstreams:\n  tickets:\n    backends:\n      - address: 127.0.0.1\n"),
                RuleText(name: "b.yaml", text: "routes:\n  - path: /buy\n    method: POST\n    upstream: tickets\n  - prefix: /\n    upstream: nobody\n"),
                RuleText(name: "c.yaml", text: "routes:\n  - path: /pay\n    method: p@y\n    upstream: tickts\n"),
            ])
        }
        #expect(error?.diagnostics.map { "\($0.file):\($0.line):\($0.path)" } == [
            "a.yaml:4:upstreams.tickets.backends[0].address",
            "b.yaml:6:routes[1].upstream",
            "c.yaml:3:routes[0].method",
            "c.yaml:4:routes[0].upstream",
        ])
    }
}

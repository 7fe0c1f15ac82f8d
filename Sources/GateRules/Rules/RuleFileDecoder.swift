import GateCore

/// Decodes one rule file into a `RuleFile`, reporting every problem that one entry shows by
/// itself (see `RuleFile` for what each stage checks).
struct RuleFileDecoder {
    private var reader: YAMLReader

    /// Every problem found so far.
    var diagnostics: [Diagnostic] {
        self.reader.diagnostics
    }

    /// A decoder for the file called `name`.
    init(name: String) {
        self.reader = YAMLReader(file: name)
    }

    /// The rules in `text`; meaningful only when `diagnostics` is empty afterwards.
    mutating func decode(_ text: String) -> RuleFile {
        var file = RuleFile(name: self.reader.file)
        let fields = self.reader.fields(of: self.reader.root(of: text), keys: ["trusted_proxies", "allow", "deny", "identity", "passes", "windows", "upstreams", "routes"])
        for entry in self.reader.elements(of: fields?["trusted_proxies"]) ?? [] {
            if let block = self.reader.cidrBlock(entry) {
                file.trustedProxies.append(block)
            }
        }
        file.allow = self.list(fields?["allow"])
        file.deny = self.list(fields?["deny"])
        if let identity = fields?["identity"] {
            file.identity = self.identity(identity)
        }
        if let passes = fields?["passes"], let passFields = self.reader.fields(of: passes, keys: ["keys"]) {
            let names = self.keyFileNames(self.reader.required("keys", in: passFields), allowed: [".key"])
            file.passes = RuleFile.PassesEntry(location: self.reader.location(of: passes), keyFiles: names)
        }
        for entry in self.reader.entries(of: fields?["windows"]) ?? [] {
            file.windows.append(RuleFile.WindowEntry(
                name: entry.name,
                location: self.reader.location(of: entry.key),
                rule: self.window(named: entry.name, key: entry.key, value: entry.value)
            ))
        }
        for entry in self.reader.entries(of: fields?["upstreams"]) ?? [] {
            file.upstreams.append(RuleFile.UpstreamEntry(
                name: entry.name,
                location: self.reader.location(of: entry.key),
                upstream: self.upstream(named: entry.name, key: entry.key, value: entry.value)
            ))
        }
        for entry in self.reader.elements(of: fields?["routes"]) ?? [] {
            if let route = self.route(entry) {
                file.routes.append(route)
            }
        }
        return file
    }

    private mutating func upstream(named name: String, key: YAMLValue, value: YAMLValue) -> Upstream? {
        let nameIsValid = name.unicodeScalars.allSatisfy { $0.isASCIILetterOrDigit || "-_.".unicodeScalars.contains($0) }
        if !nameIsValid {
            self.reader.report("upstream name '\(name)' has characters other than letters, digits, '-', '_' and '.'", at: key, hint: "name it e.g. tickets or tickets-eu")
        }
        let fields = self.reader.fields(of: value, keys: ["backends", "health_check", "passive", "slow_start"])
        let backends = self.backends(self.reader.required("backends", in: fields))
        var health = BackendHealth.Configuration()
        let healthCheck = self.healthCheck(fields?["health_check"], health: &health)
        self.passive(fields?["passive"], health: &health)
        if let slowStart = self.reader.duration(fields?["slow_start"], allowingZero: true) {
            health.slowStart = slowStart
        }
        guard nameIsValid, let backends, let healthCheck else {
            return nil
        }
        return Upstream(name: name, backends: backends, healthCheck: healthCheck, health: health)
    }

    private mutating func backends(_ value: YAMLValue?) -> [Backend]? {
        guard let value, let elements = self.reader.elements(of: value) else {
            return nil
        }
        if elements.isEmpty {
            self.reader.report("an upstream needs at least one backend", at: value, hint: "add '- address: 127.0.0.1:8081'")
        }
        var backends: [(backend: Backend, value: YAMLValue)] = []
        var complete = !elements.isEmpty
        for element in elements {
            let fields = self.reader.fields(of: element, keys: ["address", "weight", "max_in_flight"])
            let address = self.reader.required("address", in: fields)
            let endpoint = self.reader.endpoint(address, allowingPortZero: false)
            let weight = self.reader.integer(fields?["weight"], in: 1...1000) ?? 1
            let maximumInFlight = self.reader.integer(fields?["max_in_flight"], in: 1...1_000_000)
            if fields?["max_in_flight"] != nil && maximumInFlight == nil {
                complete = false
            }
            guard let endpoint, let address else {
                complete = false
                continue
            }
            if let first = backends.first(where: { $0.backend.endpoint == endpoint }) {
                self.reader.report(
                    "backend \(endpoint) is listed twice (first at \(first.value.path), line \(first.value.line))",
                    at: address,
                    hint: "list each backend once; give it a larger weight to send it more"
                )
                complete = false
            }
            backends.append((Backend(endpoint: endpoint, weight: weight, maximumInFlight: maximumInFlight), address))
        }
        return complete ? backends.map(\.backend) : nil
    }

    private mutating func healthCheck(_ value: YAMLValue?, health: inout BackendHealth.Configuration) -> HealthCheck? {
        var check = HealthCheck()
        let fields = self.reader.fields(of: value, keys: ["path", "interval", "timeout", "rise", "fall"])
        if let path = self.requestPath(fields?["path"]) {
            check.path = path
        }
        check.interval = self.reader.duration(fields?["interval"]) ?? check.interval
        let timeout = fields?["timeout"]
        check.timeout = self.reader.duration(timeout) ?? check.timeout
        health.rise = self.reader.integer(fields?["rise"], in: 1...100) ?? health.rise
        health.fall = self.reader.integer(fields?["fall"], in: 1...100) ?? health.fall
        if check.timeout > check.interval, let at = timeout ?? fields?["interval"] {
            self.reader.report(
                "the timeout (\(DurationText.format(check.timeout))) is longer than the interval (\(DurationText.format(check.interval)))",
                at: at,
                hint: "make the timeout at most the interval, so checks of one backend never overlap"
            )
            return nil
        }
        return check
    }

    private mutating func passive(_ value: YAMLValue?, health: inout BackendHealth.Configuration) {
        let fields = self.reader.fields(of: value, keys: ["eject_after", "ejection", "max_ejection"])
        health.ejectAfter = self.reader.integer(fields?["eject_after"], in: 1...1000) ?? health.ejectAfter
        health.ejection = self.reader.duration(fields?["ejection"]) ?? health.ejection
        let maximum = fields?["max_ejection"]
        health.maximumEjection = self.reader.duration(maximum) ?? health.maximumEjection
        if health.maximumEjection < health.ejection, let at = maximum ?? fields?["ejection"] {
            self.reader.report(
                "max_ejection (\(DurationText.format(health.maximumEjection))) is shorter than the first ejection (\(DurationText.format(health.ejection)))",
                at: at,
                hint: "make max_ejection at least the ejection"
            )
        }
    }

    private mutating func route(_ value: YAMLValue) -> RuleFile.RouteEntry? {
        let fields = self.reader.fields(of: value, keys: ["path", "prefix", "method", "upstream", "purchase", "in_flight", "windows", "priority", "sold_out"])
        guard let fields else {
            return nil
        }
        let match: Route.Match?
        switch (fields["path"], fields["prefix"]) {
        case (let path?, nil):
            match = self.requestPath(path).map(Route.Match.exact)
        case (nil, let prefix?):
            match = self.requestPath(prefix).map(Route.Match.prefix)
        case (_?, _?):
            self.reader.report("a route has either path or prefix, not both", at: value, hint: "path matches one path exactly, prefix every path that starts with it; keep one")
            match = nil
        case (nil, nil):
            self.reader.report("a route needs path or prefix", at: value, hint: "write 'path: /buy/ticket' for one path, or 'prefix: /' for all")
            match = nil
        }
        let method = self.method(fields["method"])
        let upstreamValue = self.reader.required("upstream", in: fields)
        let upstream = self.reader.nonEmptyString(upstreamValue).flatMap { name in
            upstreamValue.map { (name: name, location: self.reader.location(of: $0)) }
        }
        let location = self.reader.location(of: value)
        let purchase = fields["purchase"].map { self.reader.boolean($0) } ?? false
        let inFlight: InFlightPolicy?
        switch self.inFlight(fields["in_flight"], purchase: purchase ?? false) {
        case .off:
            inFlight = nil
        case .on(let policy):
            inFlight = policy
        case .invalid:
            return RuleFile.RouteEntry(location: location, upstream: upstream, route: nil)
        }
        var windows: [(name: String, location: SourceLocation)] = []
        for element in self.reader.elements(of: fields["windows"]) ?? [] {
            if let name = self.reader.nonEmptyString(element) {
                windows.append((name, self.reader.location(of: element)))
            }
        }
        let priority = self.choice(fields["priority"], of: AdmissionPriority.self, kind: "priority")
        var soldOut: SoldOutPolicy?
        var soldOutValid = true
        if let value = fields["sold_out"] {
            soldOut = self.soldOut(value)
            soldOutValid = soldOut != nil
        }
        guard let match, let upstream, method != nil || fields["method"] == nil, let purchase,
              priority != nil || fields["priority"] == nil, soldOutValid
        else {
            return RuleFile.RouteEntry(location: location, upstream: upstream, route: nil, windows: windows)
        }
        return RuleFile.RouteEntry(
            location: location,
            upstream: upstream,
            route: Route(
                method: method,
                match: match,
                upstream: upstream.name,
                purchase: purchase,
                inFlight: inFlight,
                windows: windows.map(\.name),
                priority: priority ?? .normal,
                soldOut: soldOut,
                file: location.file,
                line: location.line
            ),
            windows: windows
        )
    }

    /// `sold_out: {json_code: -1, header: X-Sold-Out, stock: {sale: ID} | {key, total, sold}, recheck: 1s}`:
    /// at least one of the three signals.
    private mutating func soldOut(_ value: YAMLValue) -> SoldOutPolicy? {
        guard let fields = self.reader.fields(of: value, keys: ["json_code", "header", "stock", "recheck"]) else {
            return nil
        }
        let before = self.reader.diagnostics.count
        var policy = SoldOutPolicy()
        policy.jsonCode = self.reader.integer(fields["json_code"], in: -1_000_000_000...1_000_000_000)
        policy.header = fields["header"].flatMap { self.headerName($0, kind: "header", example: "X-Sold-Out") }
        policy.recheck = self.reader.duration(fields["recheck"]) ?? policy.recheck
        if let stock = fields["stock"], let stockFields = self.reader.fields(of: stock, keys: ["sale", "key", "total", "sold"]) {
            switch (stockFields["sale"], stockFields["key"]) {
            case (let sale?, nil):
                if let name = self.reader.nonEmptyString(sale) {
                    policy.stock = .sale(name)
                }
            case (nil, let key?):
                if let name = self.reader.nonEmptyString(key) {
                    policy.stock = SoldOutPolicy.Stock(
                        key: name,
                        totalField: stockFields["total"].flatMap { self.reader.nonEmptyString($0) } ?? "total",
                        soldField: stockFields["sold"].flatMap { self.reader.nonEmptyString($0) } ?? "sold"
                    )
                }
            case (_?, _?):
                self.reader.report("stock names either a sale or a key, not both", at: stock, hint: "write stock: {sale: demo} for the ticket node's sale, or {key: HASH, total: FIELD, sold: FIELD}")
            case (nil, nil):
                self.reader.report("stock needs sale or key", at: stock, hint: "write stock: {sale: demo} for the ticket node's sale, or {key: HASH, total: FIELD, sold: FIELD}")
            }
        }
        guard self.reader.diagnostics.count == before else {
            return nil
        }
        guard policy.jsonCode != nil || policy.header != nil || policy.stock != nil else {
            self.reader.report(
                "sold_out says neither how a backend tells it (json_code, header) nor where the stock is (stock)",
                at: value,
                hint: "for the shipped ticket node write sold_out: {json_code: -1, stock: {sale: demo}}"
            )
            return nil
        }
        return policy
    }

    /// One entry of `windows:`: `key`, `length`, `scope`, `challenge_above` with `challenge` (`pow`,
    /// `captcha`), `difficulty`, `pass_for`, `pass_budget`, `limit_above`, `ban_above`, `ban_for`, `mode`.
    private mutating func window(named name: String, key: YAMLValue, value: YAMLValue) -> WindowRule? {
        let fields = self.reader.fields(
            of: value,
            keys: ["key", "length", "scope", "challenge_above", "challenge", "difficulty", "pass_for", "pass_budget", "limit_above", "ban_above", "ban_for", "mode"]
        )
        guard let fields else {
            return nil
        }
        let location = self.reader.location(of: key)
        var rule = WindowRule(name: name, file: location.file, line: location.line)
        var valid = true
        if let counted = self.choice(fields["key"], of: WindowRule.Key.self, kind: "key") {
            rule.key = counted
        } else if fields["key"] != nil {
            valid = false
        }
        if let mode = self.choice(fields["mode"], of: InFlightPolicy.Mode.self, kind: "mode") {
            rule.mode = mode
        } else if fields["mode"] != nil {
            valid = false
        }
        if let scope = self.choice(fields["scope"], of: WindowRule.Scope.self, kind: "scope") {
            if scope == .cluster, rule.key == .accountsPerIP || rule.key == .ipsPerAccount, let value = fields["scope"] {
                self.reader.report(
                    "scope cluster counts requests; \(rule.key.rawValue) counts distinct values and stays local",
                    at: value,
                    hint: "write scope: local (or leave it out), or count key: ip or account in the cluster"
                )
                valid = false
            } else {
                rule.scope = scope
            }
        } else if fields["scope"] != nil {
            valid = false
        }
        if let kind = self.choice(fields["challenge"], of: WindowRule.ChallengeKind.self, kind: "challenge") {
            rule.challenge = kind
        } else if fields["challenge"] != nil {
            valid = false
        }
        if let lengthValue = fields["length"] {
            if let length = self.reader.duration(lengthValue) {
                rule.length = length
            } else {
                valid = false
            }
        }
        if let banForValue = fields["ban_for"] {
            if let banFor = self.reader.duration(banForValue) {
                rule.banFor = banFor
            } else {
                valid = false
            }
        }
        rule.challengeAbove = self.reader.integer(fields["challenge_above"], in: 0...10_000_000)
        rule.limitAbove = self.reader.integer(fields["limit_above"], in: 1...10_000_000)
        rule.banAbove = self.reader.integer(fields["ban_above"], in: 1...10_000_000)
        rule.difficulty = self.reader.integer(fields["difficulty"], in: 1...ProofOfWork.maximumDifficulty) ?? rule.difficulty
        rule.passBudget = self.reader.integer(fields["pass_budget"], in: 1...100_000) ?? rule.passBudget
        rule.passFor = self.reader.duration(fields["pass_for"]) ?? rule.passFor
        for (key, parsed) in [("challenge_above", rule.challengeAbove), ("limit_above", rule.limitAbove), ("ban_above", rule.banAbove)]
        where fields[key] != nil && parsed == nil {
            valid = false
        }
        // A bad difficulty, pass_budget or pass_for is reported (and fails the set); the rule keeps
        // its default for the checks below.
        if valid, rule.challengeAbove == nil, rule.limitAbove == nil, rule.banAbove == nil {
            self.reader.report(
                "window '\(name)' neither challenges, limits nor bans",
                at: value,
                hint: "add challenge_above (a challenge above it), limit_above (429) and/or ban_above (banned for ban_for)"
            )
            valid = false
        }
        if valid, let challenge = rule.challengeAbove, let next = rule.limitAbove ?? rule.banAbove, next <= challenge, let at = fields["challenge_above"] {
            self.reader.report(
                "challenge_above (\(challenge)) is not below \(rule.limitAbove != nil ? "limit_above" : "ban_above") (\(next))",
                at: at,
                hint: "the challenge is the soft threshold: make it the lowest"
            )
            valid = false
        }
        if valid, let limit = rule.limitAbove, let ban = rule.banAbove, ban <= limit, let at = fields["ban_above"] {
            self.reader.report(
                "ban_above (\(ban)) is not above limit_above (\(limit)): every request over the limit would ban",
                at: at,
                hint: "make ban_above larger than limit_above, or drop limit_above"
            )
            valid = false
        }
        return valid ? rule : nil
    }

    /// An `allow:` or `deny:` list: networks (`10.0.0.0/8`), or `{file: NAME.list}` naming a file
    /// of them in the rules directory.
    private mutating func list(_ value: YAMLValue?) -> [RuleFile.ListEntry] {
        var entries: [RuleFile.ListEntry] = []
        for element in self.reader.elements(of: value) ?? [] {
            if element.isMapping {
                let fields = self.reader.fields(of: element, keys: ["file"])
                guard let fileValue = self.reader.required("file", in: fields), let name = self.reader.nonEmptyString(fileValue) else {
                    continue
                }
                guard name.hasSuffix(".list"), !name.contains("/"), !name.hasPrefix(".") else {
                    self.reader.report("'\(name)' is not a list file of the rules directory", at: fileValue, hint: "name a file such as deny.list beside the rule files")
                    continue
                }
                entries.append(.file(name: name, location: self.reader.location(of: fileValue)))
            } else if let block = self.reader.cidrBlock(element) {
                entries.append(.block(block))
            }
        }
        return entries
    }

    /// The `identity:` section: `header` with `trust` (`proxies`, the default, or `clients`),
    /// or `jwt: {keys, issuer, audience, leeway, cookie}`, or `signed_cookie: {name, keys}`.
    private mutating func identity(_ value: YAMLValue) -> RuleFile.IdentityEntry {
        var entry = RuleFile.IdentityEntry(location: self.reader.location(of: value), identity: nil)
        guard let fields = self.reader.fields(of: value, keys: ["header", "trust", "jwt", "signed_cookie"]) else {
            return entry
        }
        let location = self.reader.location(of: fields.mapping)
        let forms = ["header", "jwt", "signed_cookie"].filter { fields[$0] != nil }
        if forms.isEmpty {
            // The plain form is the usual one: name what it lacks.
            _ = self.reader.required("header", in: fields)
            return entry
        }
        guard forms.count == 1 else {
            self.reader.report(
                "identity has \(forms.joined(separator: " and ")); write one",
                at: fields.mapping,
                hint: "write one of header: X-Account-Id, jwt: {keys: [login.key]} or signed_cookie: {name: sg_account, keys: [cookie.key]}"
            )
            return entry
        }
        if forms[0] != "header", let trust = fields["trust"] {
            self.reader.report("trust applies to header: only", at: trust, hint: "remove trust: a token's signature is what makes it trusted")
            return entry
        }
        switch forms[0] {
        case "jwt":
            entry.identity = self.jwtIdentity(fields["jwt"], keyFiles: &entry.keyFiles).map { AccountIdentity(source: $0, file: location.file, line: location.line) }
        case "signed_cookie":
            entry.identity = self.signedCookieIdentity(fields["signed_cookie"], keyFiles: &entry.keyFiles).map { AccountIdentity(source: $0, file: location.file, line: location.line) }
        default:
            entry.identity = self.headerIdentity(fields, location: location)
        }
        return entry
    }

    private mutating func headerIdentity(_ fields: YAMLFields, location: SourceLocation) -> AccountIdentity? {
        guard let headerValue = fields["header"], let header = self.headerName(headerValue, kind: "header", example: "X-Account-Id") else {
            return nil
        }
        let trust = self.choice(fields["trust"], of: AccountIdentity.Trust.self, kind: "trust")
        if fields["trust"] != nil && trust == nil {
            return nil
        }
        return AccountIdentity(header: header, trust: trust ?? .proxies, file: location.file, line: location.line)
    }

    /// A header or cookie name (`kind`): an HTTP token.
    private mutating func headerName(_ value: YAMLValue, kind: String, example: String) -> String? {
        guard let name = self.reader.nonEmptyString(value) else {
            return nil
        }
        guard name.utf8.allSatisfy(HTTP1Head.isTokenByte) else {
            self.reader.report("'\(name)' is not a \(kind) name", at: value, hint: "write a name such as \(example) (letters, digits and -)")
            return nil
        }
        return name
    }

    /// `jwt: {keys: [FILE...], issuer, audience, leeway: 30s, cookie: NAME}`. The keys are
    /// resolved later; the verifier gets them then.
    private mutating func jwtIdentity(_ value: YAMLValue?, keyFiles: inout [(name: String, location: SourceLocation)]) -> AccountIdentity.Source? {
        guard let fields = self.reader.fields(of: value, keys: ["keys", "issuer", "audience", "leeway", "cookie"]) else {
            return nil
        }
        let before = self.reader.diagnostics.count
        keyFiles = self.keyFileNames(self.reader.required("keys", in: fields), allowed: [".key", ".pem"])
        let issuer = fields["issuer"].flatMap { self.reader.nonEmptyString($0) }
        let audience = fields["audience"].flatMap { self.reader.nonEmptyString($0) }
        let leeway = fields["leeway"].flatMap { self.reader.duration($0, allowingZero: true) }
        let cookie = fields["cookie"].flatMap { self.headerName($0, kind: "cookie", example: "sg_jwt") }
        guard self.reader.diagnostics.count == before else {
            return nil
        }
        let verifier = JWTVerifier(keys: [], issuer: issuer, audience: audience, leeway: leeway.map { $0.components.seconds } ?? 30)
        return .jwt(verifier, cookie: cookie)
    }

    /// `signed_cookie: {name: NAME, keys: [FILE.key...]}`.
    private mutating func signedCookieIdentity(_ value: YAMLValue?, keyFiles: inout [(name: String, location: SourceLocation)]) -> AccountIdentity.Source? {
        guard let fields = self.reader.fields(of: value, keys: ["name", "keys"]) else {
            return nil
        }
        let before = self.reader.diagnostics.count
        let name = self.reader.required("name", in: fields).flatMap { self.headerName($0, kind: "cookie", example: "sg_account") }
        keyFiles = self.keyFileNames(self.reader.required("keys", in: fields), allowed: [".key"])
        guard let name, self.reader.diagnostics.count == before else {
            return nil
        }
        return .signedCookie(SignedCookie(keys: []), cookie: name)
    }

    /// A non-empty list of key file names in the rules directory, each ending in one of `allowed`.
    private mutating func keyFileNames(_ value: YAMLValue?, allowed: [String]) -> [(name: String, location: SourceLocation)] {
        guard let value, let elements = self.reader.elements(of: value) else {
            return []
        }
        if elements.isEmpty {
            self.reader.report("keys is empty", at: value, hint: "list at least one key file, e.g. keys: [\(allowed.count > 1 ? "login.pem" : "cookie.key")]")
        }
        var names: [(name: String, location: SourceLocation)] = []
        for element in elements {
            guard let name = self.reader.nonEmptyString(element) else {
                continue
            }
            guard allowed.contains(where: { name.hasSuffix($0) }), !name.contains("/") else {
                self.reader.report(
                    "'\(name)' is not a key file name",
                    at: element,
                    hint: allowed.count > 1
                        ? "name a file in the rules directory: NAME.key (an HS256 secret) or NAME.pem (an ES256 public key)"
                        : "name a file in the rules directory: NAME.key (an HMAC secret)"
                )
                continue
            }
            names.append((name, self.reader.location(of: element)))
        }
        return names
    }

    /// A route's `in_flight:` as written.
    private enum InFlightSetting {
        case off
        case on(InFlightPolicy)
        /// Written wrong (reported).
        case invalid
    }

    /// A route's `in_flight:`: `true`/`false`, or `{mode, ttl}`; absent, it is on for purchase
    /// routes and off for the others.
    private mutating func inFlight(_ value: YAMLValue?, purchase: Bool) -> InFlightSetting {
        guard let value else {
            return purchase ? .on(.purchaseDefault) : .off
        }
        if value.isBoolean {
            guard let on = self.reader.boolean(value) else {
                return .invalid
            }
            return on ? .on(.purchaseDefault) : .off
        }
        guard let fields = self.reader.fields(of: value, keys: ["mode", "ttl", "store", "on_store_error"]) else {
            return .invalid
        }
        var policy = InFlightPolicy.purchaseDefault
        var valid = true
        if let mode = self.choice(fields["mode"], of: InFlightPolicy.Mode.self, kind: "mode") {
            policy.mode = mode
        } else if fields["mode"] != nil {
            valid = false
        }
        if let store = self.choice(fields["store"], of: InFlightPolicy.Store.self, kind: "store") {
            policy.store = store
        } else if fields["store"] != nil {
            valid = false
        }
        if let onError = self.choice(fields["on_store_error"], of: InFlightPolicy.StoreErrorPolicy.self, kind: "on_store_error") {
            policy.onStoreError = onError
        } else if fields["on_store_error"] != nil {
            valid = false
        }
        if let ttlValue = fields["ttl"] {
            if let ttl = self.reader.duration(ttlValue) {
                policy.ttl = ttl
            } else {
                valid = false
            }
        }
        guard valid else {
            return .invalid
        }
        return .on(policy)
    }

    /// One of the words an enumeration allows; anything else is reported with a "did you mean".
    private mutating func choice<Choice: RawRepresentable & CaseIterable>(
        _ value: YAMLValue?,
        of type: Choice.Type,
        kind: String
    ) -> Choice? where Choice.RawValue == String {
        guard let value, let text = self.reader.nonEmptyString(value) else {
            return nil
        }
        guard let choice = Choice(rawValue: text) else {
            let words = Choice.allCases.map(\.rawValue)
            self.reader.report(
                "\(kind) '\(text)' is not one of \(words.joined(separator: ", "))",
                at: value,
                hint: SpellingSuggestion.hint(for: text, among: words, known: "choices")
            )
            return nil
        }
        return choice
    }

    /// A path as a request carries it: starting with `/`, no query, no fragment, no spaces.
    private mutating func requestPath(_ value: YAMLValue?) -> String? {
        guard let value, let path = self.reader.string(value) else {
            return nil
        }
        guard path.hasPrefix("/") else {
            self.reader.report("'\(path)' does not start with '/'", at: value, hint: "write e.g. /\(path)")
            return nil
        }
        if let bad = path.first(where: { $0 == "?" || $0 == "#" || $0.isWhitespace || !$0.isASCII }) {
            let hint = bad == "?" ? "routes match the path only; the query string is ignored" : "percent-encode it as the request would"
            self.reader.report("'\(path)' has '\(bad)', which a request path never holds", at: value, hint: hint)
            return nil
        }
        return path
    }

    /// An HTTP method: a token (RFC 9110), upper case since methods are case-sensitive.
    private mutating func method(_ value: YAMLValue?) -> String? {
        guard let value, let method = self.reader.nonEmptyString(value) else {
            return nil
        }
        let symbols = "!#$%&'*+-.^_`|~"
        guard method.unicodeScalars.allSatisfy({ $0.isASCIILetterOrDigit || symbols.unicodeScalars.contains($0) }) else {
            self.reader.report("'\(method)' is not an HTTP method", at: value, hint: "write one method such as GET or POST")
            return nil
        }
        guard method == method.uppercased() else {
            self.reader.report("'\(method)' would match no request: HTTP methods are case-sensitive", at: value, hint: "write \(method.uppercased())")
            return nil
        }
        return method
    }
}

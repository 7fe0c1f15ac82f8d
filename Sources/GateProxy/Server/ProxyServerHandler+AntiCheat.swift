import CoreMetrics
import Foundation
import GateCore
import GateRedis
import GateRules
import Logging
import NIOCore
import NIOHTTP1

/// The anti-cheat phases of a request head: the account it names, deny and allow lists, bans,
/// sliding windows, proof-of-work challenges and their verify path, and the gateway's refusals
/// for them. The in-flight flags live with the exchange (`ProxyServerHandler.swift`), since
/// they are given back when it ends.
extension ProxyServerHandler {
    /// The refusal of a client on a `deny:` list.
    static let deniedAnswer = LocalAnswer(status: .forbidden, code: LocalAnswer.Code.denied, reason: "denied")

    /// The refusal of a second request while the account has one in flight.
    static let inFlightAnswer = LocalAnswer(
        status: .tooManyRequests,
        code: LocalAnswer.Code.inFlight,
        reason: "request in flight",
        headers: [("Retry-After", "1")]
    )

    /// Bans (on every route) and the route's sliding windows: the refusal to answer, if any.
    /// `client` is the client address when the caller has already resolved it; `holdsPass` is
    /// set when the request shows a valid challenge pass (it goes first when the upstream is
    /// at its limit).
    func checkWindows(
        method: String,
        route: Route,
        rules: RuleSet,
        resolver: ClientAddressResolver,
        fields: [HTTP1Head.Field],
        account: String?,
        client resolved: IPAddress?,
        holdsPass: inout Bool
    ) -> (answer: LocalAnswer, decision: GatewayMetrics.Decision, rule: String?)? {
        let abuse = self.settings.abuse
        let windowRules = route.windowRules
        guard !windowRules.isEmpty || abuse.hasBans else {
            // The common case: nothing to count, nobody banned, no lock, no clock.
            return nil
        }
        let now = MonotonicInstant.now()
        let client = resolved ?? self.clientAddress(fields: fields, resolver: resolver)
        // The peer's text is made once per connection; only a forwarded client is printed here.
        let ip = client == self.peer ? self.peerText : client.description
        self.access?.client = ip
        if let ban = abuse.ban(ip: ip, account: account, now: now) {
            return (Self.bannedAnswer(ban, now: now), .banned, ban.rule)
        }
        guard !windowRules.isEmpty else {
            return nil
        }
        let metrics = self.settings.metrics
        // A pass is looked at only where a window can challenge.
        var pass: PassToken?
        if windowRules.contains(where: { $0.challengeAbove != nil }), let text = Self.passText(in: fields) {
            switch PassToken.verify(text, keyring: rules.passKeys ?? self.settings.passKeys, client: client, route: route.id, now: Self.unixNow()) {
            case .success(let token):
                pass = token
                holdsPass = true
            case .failure(let refusal):
                self.logger.debug("pass not accepted", metadata: ["peer": "\(ip)", "reason": "\(refusal.rawValue)"])
            }
        }
        switch abuse.count(windowRules, ip: ip, account: account, pass: pass, now: now, shadowed: { _ in metrics.windowShadowed.increment() }) {
        case .pass:
            return nil
        case .challenge(let rule):
            let wantsHTML = fields.contains { $0.name.equalsASCIICaseInsensitive("accept") && $0.value.contains("text/html") }
            let challenge = self.challenge(rule: rule, client: ip, route: route.id, method: method, wantsHTML: wantsHTML, now: now)
            return (challenge.answer, challenge.decision, rule.name)
        case .banned(let ban):
            self.logger.info("banned", metadata: ["kind": "\(ban.kind.rawValue)", "key": "\(ban.key)", "rule": "\(ban.rule)", "reason": "\(ban.reason)"])
            return (Self.bannedAnswer(ban, now: now), .banned, ban.rule)
        case .limited(let rule):
            let seconds = max(1, Int((rule.length / .seconds(1)).rounded(.up)))
            let answer = LocalAnswer(
                status: .tooManyRequests,
                code: LocalAnswer.Code.rateLimited,
                reason: "too many requests (rule \(rule.name))",
                headers: [("Retry-After", String(seconds))]
            )
            return (answer, .rateLimited, rule.name)
        }
    }

    /// Where challenges are solved: `GET|POST /.spikegate/verify?id=ID&nonce=NONCE` (proof-of-
    /// work) or `…&answer=TEXT` (image CAPTCHA).
    static let verifyPath = "/.spikegate/verify"
    /// Where an image CAPTCHA's picture is fetched: `GET /.spikegate/captcha?id=ID` (PNG).
    static let captchaPath = "/.spikegate/captcha"
    /// The two paths with their query's `?`.
    static let verifyQueryPrefix = verifyPath + "?"
    static let captchaQueryPrefix = captchaPath + "?"
    /// How long a challenge may be solved in.
    static let challengeLifetime = Duration.seconds(60)
    /// The verify path's own limit per client address (solutions are cheap to check but not free).
    static let verifyWindow = WindowRule(name: "verify", key: .ip, length: .seconds(10), limitAbove: 30, file: "(built in)", line: 0)

    /// The client address: the peer, or the rightmost untrusted `X-Forwarded-For` entry when the
    /// peer is a trusted proxy.
    func clientAddress(fields: [HTTP1Head.Field], resolver: ClientAddressResolver) -> IPAddress {
        let forwardedFor = fields.filter { $0.name.equalsASCIICaseInsensitive("x-forwarded-for") }.map(\.value)
        return resolver.resolve(peer: self.peer, forwardedFor: forwardedFor).address
    }

    /// A new challenge for `client` on `route`, as the answer to send.
    func challenge(
        rule: WindowRule,
        client: String,
        route: String,
        method: String,
        wantsHTML: Bool,
        now: MonotonicInstant
    ) -> (answer: LocalAnswer, decision: GatewayMetrics.Decision) {
        var generator = SystemRandomNumberGenerator()
        let id = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        let answerText = rule.challenge == .captcha ? CaptchaImage.randomText(using: &generator) : nil
        let issued = self.settings.abuse.issue(
            ChallengeBook.Challenge(
                id: id, difficulty: rule.difficulty, client: client, route: route, expires: now + Self.challengeLifetime, rule: rule.name,
                answer: answerText, seed: UInt64.random(in: .min ... .max, using: &generator)
            ),
            now: now
        )
        guard issued else {
            // The book is full of open challenges: refuse instead (an attack is under way).
            return (LocalAnswer(status: .tooManyRequests, code: LocalAnswer.Code.rateLimited, reason: "too many requests (rule \(rule.name))", headers: [("Retry-After", "10")]), .rateLimited)
        }
        let seconds = Int(Self.challengeLifetime / .seconds(1))
        let page: String, members: String, reason: String
        if let answerText {
            page = ChallengePage.captchaHTML(id: id, imagePath: Self.captchaPath, verifyPath: Self.verifyPath, method: method)
            members = "\"challenge\":{\"id\":\"\(id)\",\"kind\":\"captcha\",\"image\":\"\(Self.captchaPath)?id=\(id)\","
                + "\"length\":\(answerText.count),\"expires_in\":\(seconds),\"verify\":\"\(Self.verifyPath)?id=\(id)&answer=\"}"
            reason = "solve the challenge: type the characters of the image (one try per image)"
        } else {
            page = ChallengePage.html(id: id, difficulty: rule.difficulty, verifyPath: Self.verifyPath, method: method)
            members = "\"challenge\":{\"id\":\"\(id)\",\"kind\":\"pow\",\"algorithm\":\"sha256\",\"difficulty\":\(rule.difficulty),"
                + "\"expires_in\":\(seconds),\"verify\":\"\(Self.verifyPath)?id=\(id)&nonce=\"}"
            reason = "solve the challenge: find a nonce such that sha256(id:nonce) starts with \(rule.difficulty) zero bits"
        }
        if wantsHTML {
            return (LocalAnswer(status: .tooManyRequests, code: LocalAnswer.Code.challenge, reason: "challenge", html: page), .challenged)
        }
        return (LocalAnswer(status: .tooManyRequests, code: LocalAnswer.Code.challenge, reason: reason, members: members), .challenged)
    }

    /// Answers `GET /.spikegate/captcha?id=ID`: the image of an open CAPTCHA challenge of this
    /// client (drawn again from its seed; fetching it does not use the challenge up). Counted
    /// against the verify path's limit.
    func captchaImage(target: String, fields: [HTTP1Head.Field], resolver: ClientAddressResolver) -> (answer: LocalAnswer, decision: GatewayMetrics.Decision) {
        let now = MonotonicInstant.now()
        let client = self.clientAddress(fields: fields, resolver: resolver)
        if case .limited = self.settings.abuse.count([Self.verifyWindow], ip: client.description, account: nil, now: now, shadowed: { _ in }) {
            return (LocalAnswer(status: .tooManyRequests, code: LocalAnswer.Code.rateLimited, reason: "too many challenge requests", headers: [("Retry-After", "10")]), .rateLimited)
        }
        let id = Self.queryValues(of: target)["id"] ?? ""
        guard let challenge = self.settings.abuse.peek(id: id, client: client.description, now: now), let text = challenge.answer else {
            return (LocalAnswer(status: .notFound, code: LocalAnswer.Code.challenge, reason: "no open image challenge \(id.prefix(40)) for this client"), .refused)
        }
        let image = CaptchaImage.png(text: text, seed: challenge.seed)
        return (LocalAnswer(status: .ok, png: image, headers: [("Cache-Control", "no-store")]), .challenged)
    }

    /// The `name=value` pairs of a target's query, percent-decoded (the last of a name wins).
    static func queryValues(of target: String) -> [String: String] {
        var values: [String: String] = [:]
        if let query = target.split(separator: "?", maxSplits: 1).dropFirst().first {
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                values[String(parts[0])] = parts.count > 1 ? String(parts[1]).removingPercentEncoding ?? "" : ""
            }
        }
        return values
    }

    /// Answers `GET|POST /.spikegate/verify?id=ID&nonce=NONCE`: a pass for a right solution.
    func verify(target: String, fields: [HTTP1Head.Field], rules: RuleSet, resolver: ClientAddressResolver) -> (answer: LocalAnswer, decision: GatewayMetrics.Decision) {
        let now = MonotonicInstant.now()
        let client = self.clientAddress(fields: fields, resolver: resolver)
        if case .limited = self.settings.abuse.count([Self.verifyWindow], ip: client.description, account: nil, now: now, shadowed: { _ in }) {
            return (LocalAnswer(status: .tooManyRequests, code: LocalAnswer.Code.rateLimited, reason: "too many solutions tried", headers: [("Retry-After", "10")]), .rateLimited)
        }
        let query = Self.queryValues(of: target)
        let id = query["id"] ?? ""
        let nonce = query["nonce"] ?? query["answer"] ?? ""
        let challenge: ChallengeBook.Challenge
        switch self.settings.abuse.redeem(id: id, nonce: nonce, client: client.description, now: now) {
        case .failure(let refusal):
            return (LocalAnswer(status: .forbidden, code: LocalAnswer.Code.challenge, reason: refusal.rawValue), .challengeFailed)
        case .success(let solved):
            challenge = solved
        }
        let rule = rules.windows[challenge.rule]
        let lifetime = Int64((rule?.passFor ?? .seconds(300)) / .seconds(1))
        let budget = rule?.passBudget ?? WindowRule.defaultPassBudget
        var generator = SystemRandomNumberGenerator()
        let pass = PassToken(
            keyID: (rules.passKeys ?? self.settings.passKeys).current,
            expires: Self.unixNow() + lifetime,
            prefix: PassToken.prefix(of: client),
            route: challenge.route,
            nonce: String(UInt64.random(in: .min ... .max, using: &generator), radix: 36)
        )
        self.settings.abuse.issued(pass, budget: budget)
        let token = pass.encoded(with: rules.passKeys ?? self.settings.passKeys)
        let secure = self.scheme == "https" ? "; Secure" : ""
        let answer = LocalAnswer(
            status: .ok,
            code: 0,
            reason: "challenge solved",
            members: "\"pass\":\"\(token)\",\"expires_in\":\(lifetime),\"budget\":\(budget)",
            headers: [("Set-Cookie", "sg_pass=\(token); Path=/; Max-Age=\(lifetime); HttpOnly; SameSite=Strict\(secure)")]
        )
        return (answer, .challengeSolved)
    }

    /// The pass a request shows: header `X-SpikeGate-Pass`, else cookie `sg_pass`.
    static func passText(in fields: [HTTP1Head.Field]) -> String? {
        for field in fields where field.name.equalsASCIICaseInsensitive("x-spikegate-pass") {
            return field.value
        }
        return Self.cookie(named: "sg_pass", in: fields)
    }

    /// Wall-clock seconds (passes outlive a process, so they carry real time).
    static func unixNow() -> Int64 {
        Int64(Date().timeIntervalSince1970)
    }

    static func bannedAnswer(_ ban: BanList.Ban, now: MonotonicInstant) -> LocalAnswer {
        let seconds = max(1, Int(((ban.until - now) / .seconds(1)).rounded(.up)))
        return LocalAnswer(
            status: .forbidden,
            code: LocalAnswer.Code.banned,
            reason: "banned by rule \(ban.rule) (\(ban.reason))",
            headers: [("Retry-After", String(seconds))]
        )
    }

    /// The refusal when Redis cannot be asked and the rule says `on_store_error: closed`.
    static let storeUnavailableAnswer = LocalAnswer(
        status: .serviceUnavailable,
        code: LocalAnswer.Code.stateUnavailable,
        reason: "the shared state store is unavailable",
        headers: [("Retry-After", "1")]
    )

    /// The longest account id taken (a longer one is refused: it would only bloat the flags).
    static let maximumAccountBytes = 256

    /// The account a request names under `identity`: `nil` when the rules name no identity,
    /// the request carries none, or it carries one that is not believed (from a peer that is not
    /// a trusted proxy when the identity trusts only proxies). Two identity headers, or one
    /// longer than `maximumAccountBytes`, are refused: a gateway and a backend that read
    /// different accounts out of one request would let it past the per-account rules.
    static func account(
        in fields: [HTTP1Head.Field],
        identity: AccountIdentity?,
        peerTrusted: Bool,
        now: @autoclosure () -> Int64 = ProxyServerHandler.unixNow()
    ) -> Result<String?, RequestHeadCheck.Refusal> {
        guard let identity else {
            return .success(nil)
        }
        let verified: Result<String, AccountTokenRefusal>
        switch identity.source {
        case .header:
            var found: String?
            for field in fields where field.name.equalsASCIICaseInsensitive(identity.headerLowercased) {
                guard found == nil else {
                    return .failure(RequestHeadCheck.Refusal(status: 400, reason: "more than one \(identity.header) header; send one"))
                }
                found = field.value
            }
            guard let account = found, !account.isEmpty, identity.trust == .clients || peerTrusted else {
                return .success(nil)
            }
            guard account.utf8.count <= Self.maximumAccountBytes else {
                return .failure(RequestHeadCheck.Refusal(status: 400, reason: "\(identity.header) longer than \(Self.maximumAccountBytes) bytes"))
            }
            return .success(account)
        case .jwt(let verifier, let cookieName):
            let token: String?
            if let cookieName {
                token = Self.cookie(named: cookieName, in: fields)
            } else {
                switch Self.bearerToken(in: fields) {
                case .failure(let refusal):
                    return .failure(refusal)
                case .success(let found):
                    token = found
                }
            }
            guard let token else {
                return .success(nil)
            }
            verified = verifier.subject(of: token, now: now())
        case .signedCookie(let cookie, let name):
            guard let value = Self.cookie(named: name, in: fields) else {
                return .success(nil)
            }
            verified = cookie.account(of: value, now: now())
        }
        switch verified {
        case .success(let account):
            return .success(account)
        case .failure(let refusal):
            return .failure(RequestHeadCheck.Refusal(status: 401, reason: "account not verified: \(refusal.reason)"))
        }
    }

    /// The token of `Authorization: Bearer TOKEN`; `nil` without that header (or with another
    /// scheme); refused when the header comes twice.
    static func bearerToken(in fields: [HTTP1Head.Field]) -> Result<String?, RequestHeadCheck.Refusal> {
        var token: String?
        var seen = false
        for field in fields where field.name.equalsASCIICaseInsensitive("authorization") {
            guard !seen else {
                return .failure(RequestHeadCheck.Refusal(status: 400, reason: "more than one Authorization header; send one"))
            }
            seen = true
            let value = field.value
            if value.utf8.count > 7, value.utf8.prefix(7).elementsEqual("bearer ".utf8, by: { $0 | 0x20 == $1 | 0x20 }) {
                token = String(value.dropFirst(7).drop { $0 == " " })
            }
        }
        return .success(token)
    }

    /// The value of the first cookie called `name` in the `Cookie` headers.
    static func cookie(named name: String, in fields: [HTTP1Head.Field]) -> String? {
        for field in fields where field.name.equalsASCIICaseInsensitive("cookie") {
            for part in field.value.split(separator: ";") {
                let pair = part.drop { $0 == " " }
                if pair.count > name.count, pair.hasPrefix(name), pair.dropFirst(name.count).first == "=" {
                    return String(pair.dropFirst(name.count + 1))
                }
            }
        }
        return nil
    }
}

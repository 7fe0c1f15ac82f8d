import Foundation
import GateCore
import GateRedis
import GateRules
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin listener: `/` (the dashboard), `/healthz`, `/readyz`, `/metrics`, `/rules`,
/// `POST /rules/reload`, `GET /blocked`, `DELETE /blocked/{ip|account}/{key}`, and (when
/// enabled, for load tests) `GET /captcha/answer?id=`.
///
/// On its own address (keep it on loopback or a management network): it tells who is routed
/// where and can reload the rules.
public final class AdminServer: Sendable {
    private let channel: any Channel

    /// The bound port.
    public var port: Int {
        self.channel.localAddress?.port ?? 0
    }

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Binds `endpoint` and serves `gateway`'s admin pages; `metrics` renders the Prometheus
    /// text, `watcher` (when rules are watched) reports and performs reloads.
    ///
    /// With a `token`, the pages that change or reveal who is blocked (`/blocked`, and
    /// `POST /rules/reload`) want `Authorization: Bearer TOKEN` (401 otherwise).
    public static func start(
        endpoint: Endpoint,
        gateway: Gateway,
        watcher: RulesWatcher?,
        metrics: @escaping @Sendable () -> String,
        token: String? = nil,
        revealsCaptchaAnswers: Bool = false,
        group: any EventLoopGroup,
        logger: Logger
    ) async throws -> AdminServer {
        let pages = AdminPages(gateway: gateway, watcher: watcher, metrics: metrics, token: token, revealsCaptchaAnswers: revealsCaptchaAnswers)
        if revealsCaptchaAnswers {
            logger.warning("the admin listener tells CAPTCHA answers (admin.captcha_answers: load tests only)")
        }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(pages: pages))
                }
            }
            .bind(host: endpoint.host, port: endpoint.port).get()
        logger.info("admin listening", metadata: ["address": "\(endpoint.host):\(channel.localAddress?.port ?? endpoint.port)"])
        return AdminServer(channel: channel)
    }

    /// Stops listening and closes the admin connections' listener.
    public func shutdown() async {
        try? await self.channel.close()
    }
}

/// What the admin pages answer, apart from HTTP.
struct AdminPages: Sendable {
    struct Answer: Sendable {
        let status: HTTPResponseStatus
        let contentType: String
        let body: String
    }

    let gateway: Gateway
    let watcher: RulesWatcher?
    let metrics: @Sendable () -> String
    let token: String?
    /// Whether `GET /captcha/answer?id=` answers (admin `captcha_answers: true`).
    var revealsCaptchaAnswers = false

    /// Whether `authorization` (the request's header) carries the token, compared in constant time.
    func authorized(_ authorization: String?) -> Bool {
        guard let token = self.token else {
            return true
        }
        guard let authorization, authorization.hasPrefix("Bearer ") else {
            return false
        }
        let given = Array(authorization.utf8.dropFirst("Bearer ".count))
        let expected = Array(token.utf8)
        var difference = given.count ^ expected.count
        for index in 0..<expected.count {
            difference |= Int(expected[index] ^ (index < given.count ? given[index] : 0))
        }
        return difference == 0
    }

    func answer(method: HTTPMethod, path: String, query: String = "", authorization: String? = nil) -> Answer {
        let guarded = path == "/blocked" || path.hasPrefix("/blocked/") || (method == .POST && path == "/rules/reload") || path == "/captcha/answer"
        if guarded && !self.authorized(authorization) {
            return self.json(.unauthorized, ["error": "\(path) needs Authorization: Bearer with the admin token"])
        }
        if path == "/blocked" || path.hasPrefix("/blocked/") {
            return self.blocked(method: method, path: path, query: query)
        }
        switch (method, path) {
        case (.GET, "/"):
            return Answer(status: .ok, contentType: "text/html; charset=utf-8", body: Dashboard.html)
        case (.GET, "/healthz"):
            return self.json(.ok, ["status": "ok"])
        case (.GET, "/readyz"):
            let readiness = self.gateway.readiness()
            let warmup = self.gateway.warmupStatus()
            return self.json(readiness.ready ? .ok : .serviceUnavailable, [
                "ready": readiness.ready, "reason": readiness.reason,
                "warmup": ["phase": warmup.phase.rawValue, "admitted_share": warmup.share],
            ])
        case (.GET, "/metrics"):
            self.gateway.refreshScrapedMetrics()
            return Answer(status: .ok, contentType: "text/plain; version=0.0.4", body: self.metrics())
        case (.GET, "/rules"):
            return self.json(.ok, self.rules())
        case (.GET, "/captcha/answer"):
            guard self.revealsCaptchaAnswers else {
                return self.json(.notFound, ["error": "CAPTCHA answers are not told: set admin captcha_answers: true (load tests only)"])
            }
            let id = Self.parameters(of: query)["id"] ?? ""
            guard let answer = self.gateway.captchaAnswer(id: id) else {
                return self.json(.notFound, ["error": "no open image CAPTCHA \(id)"])
            }
            return self.json(.ok, ["id": id, "answer": answer])
        case (.POST, "/rules/reload"):
            guard let watcher = self.watcher else {
                return self.json(.conflict, ["error": "the gateway was started without a rules directory to reload from"])
            }
            let status = watcher.reloadNow(reason: "admin POST /rules/reload")
            if let error = status.lastError {
                return self.json(.unprocessableEntity, ["error": error, "active_version": status.activeVersion])
            }
            return self.json(.ok, ["active_version": status.activeVersion])
        case (_, "/healthz"), (_, "/readyz"), (_, "/metrics"), (_, "/rules"), (_, "/rules/reload"):
            return self.json(.methodNotAllowed, ["error": "\(method.rawValue) is not allowed on \(path)"])
        default:
            return self.json(.notFound, ["error": "no admin page \(path); try /, /healthz, /readyz, /metrics, /rules, /blocked"])
        }
    }

    /// A query's parameters, percent-decoded (the last of a repeated name wins).
    static func parameters(of query: String) -> [String: String] {
        Dictionary(
            query.split(separator: "&").map { pair -> (String, String) in
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]), parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? "") : "")
            },
            uniquingKeysWith: { _, last in last }
        )
    }

    /// `GET /blocked[?kind=ip|account&action=banned|challenged&rule=NAME&limit=N&offset=M]`: the bans in
    /// force, then the clients challenged within a window length (`hits`: requests refused by
    /// the ban, or challenges issued); `DELETE /blocked/KIND/KEY` lifts a ban and forgets the
    /// challenge record (`KEY` percent-encoded).
    private func blocked(method: HTTPMethod, path: String, query: String) -> Answer {
        let parameters = Self.parameters(of: query)
        switch method {
        case .GET where path == "/blocked":
            var kind: BanList.Kind?
            if let text = parameters["kind"] {
                guard let parsed = BanList.Kind(rawValue: text) else {
                    return self.json(.badRequest, ["error": "kind '\(text)' is not one of ip, account"])
                }
                kind = parsed
            }
            var limit = 100
            if let text = parameters["limit"] {
                guard let parsed = Int(text), parsed > 0, parsed <= 10_000 else {
                    return self.json(.badRequest, ["error": "limit '\(text)' is not a number from 1 to 10000"])
                }
                limit = parsed
            }
            var offset = 0
            if let text = parameters["offset"] {
                guard let parsed = Int(text), parsed >= 0 else {
                    return self.json(.badRequest, ["error": "offset '\(text)' is not a number from 0"])
                }
                offset = parsed
            }
            var actions = ["banned", "challenged"]
            if let text = parameters["action"] {
                guard actions.contains(text) else {
                    return self.json(.badRequest, ["error": "action '\(text)' is not one of banned, challenged"])
                }
                actions = [text]
            }
            let rule = parameters["rule"]
            let now = MonotonicInstant.now()
            var records: [(action: String, record: BanList.Ban)] = []
            if actions.contains("banned") {
                records += self.gateway.blocked(kind: kind).map { ("banned", $0) }
            }
            if actions.contains("challenged") {
                records += self.gateway.challenged(kind: kind).map { ("challenged", $0) }
            }
            if let rule {
                records = records.filter { $0.record.rule == rule }
            }
            let page = records.dropFirst(offset).prefix(limit)
            return self.json(.ok, [
                "count": records.count,
                "banned": records.count { $0.action == "banned" },
                "challenged": records.count { $0.action == "challenged" },
                "offset": offset,
                // Where the next page starts, or null on the last one.
                "next_offset": offset + page.count < records.count ? offset + page.count as Any : NSNull(),
                "blocked": page.map { action, ban -> [String: Any] in
                    [
                        "action": action,
                        "kind": ban.kind.rawValue,
                        "key": ban.key,
                        "rule": ban.rule,
                        "reason": ban.reason,
                        "seconds_left": Double((ban.until - now).nanosecondsClamped) / 1e9,
                        "since_seconds": Double((now - ban.since).nanosecondsClamped) / 1e9,
                        "hits": ban.hits,
                    ]
                },
            ])
        case .DELETE:
            let parts = path.split(separator: "/", maxSplits: 2).map(String.init)
            guard parts.count == 3, let kind = BanList.Kind(rawValue: parts[1]), let key = parts[2].removingPercentEncoding, !key.isEmpty else {
                return self.json(.badRequest, ["error": "write DELETE /blocked/ip/ADDRESS or DELETE /blocked/account/ID"])
            }
            return self.gateway.unblock(kind, key)
                ? self.json(.ok, ["unblocked": ["kind": kind.rawValue, "key": key]])
                : self.json(.notFound, ["error": "no \(kind.rawValue) '\(key)' is blocked"])
        default:
            return self.json(.methodNotAllowed, ["error": "\(method.rawValue) is not allowed on \(path); GET /blocked or DELETE /blocked/KIND/KEY"])
        }
    }

    private func rules() -> [String: Any] {
        let ruleSet = self.gateway.ruleSet
        let now = MonotonicInstant.now()
        let backends = self.gateway.backendStatus(at: now)
        var page: [String: Any] = [
            "version": ruleSet.version,
            "trusted_proxies": ruleSet.trustedProxies.blocks.map(\.description),
            "upstreams": ruleSet.upstreams.map { upstream -> [String: Any] in
                [
                    "name": upstream.name,
                    "backends": backends.filter { $0.upstream == upstream.name }.map { backend -> [String: Any] in
                        var entry: [String: Any] = [
                            "address": backend.endpoint.description,
                            "weight": backend.weight,
                            "effective_weight": Double(backend.effectiveWeight) / 100,
                            "phase": backend.phase,
                        ]
                        if let until = backend.rampUntil {
                            entry["slow_start_seconds_left"] = Double((until - now).nanosecondsClamped) / 1e9
                        }
                        if let until = backend.ejectedUntil {
                            entry["ejected_seconds_left"] = Double((until - now).nanosecondsClamped) / 1e9
                        }
                        return entry
                    },
                ]
            },
            "routes": ruleSet.routes.map { route -> [String: Any] in
                var entry: [String: Any] = ["upstream": route.upstream]
                switch route.match {
                case .exact(let path):
                    entry["path"] = path
                case .prefix(let prefix):
                    entry["prefix"] = prefix
                }
                if let method = route.method {
                    entry["method"] = method
                }
                return entry
            },
        ]
        if let status = self.watcher?.status {
            page["reloads"] = status.reloads
            page["failed_reloads"] = status.failedReloads
            page["last_error"] = status.lastError ?? NSNull()
        }
        return page
    }

    private func json(_ status: HTTPResponseStatus, _ object: [String: Any]) -> Answer {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])) ?? Data("{}".utf8)
        return Answer(status: status, contentType: "application/json", body: String(decoding: data, as: UTF8.self) + "\n")
    }
}

/// Serves `AdminPages` on one admin connection.
private final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let pages: AdminPages
    private var head: HTTPRequestHead?

    init(pages: AdminPages) {
        self.pages = pages
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head = self.head else {
                return
            }
            self.head = nil
            let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let answer = self.pages.answer(
                method: head.method,
                path: parts.first ?? head.uri,
                query: parts.count > 1 ? parts[1] : "",
                authorization: head.headers.first(name: "Authorization")
            )
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: answer.contentType)
            headers.add(name: "Content-Length", value: String(answer.body.utf8.count))
            headers.add(name: "Cache-Control", value: "no-store")
            if answer.status == .unauthorized {
                headers.add(name: "WWW-Authenticate", value: "Bearer")
            }
            if !head.isKeepAlive {
                headers.add(name: "Connection", value: "close")
            }
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: answer.status, headers: headers))), promise: nil)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: answer.body)))), promise: nil)
            let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
            if !head.isKeepAlive {
                written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            }
        }
    }
}

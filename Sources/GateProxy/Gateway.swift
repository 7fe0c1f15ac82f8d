import GateChannels
import GateCore
import GateRedis
import GateRules
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A running gateway: its listeners, per-event-loop upstream pools, health checks and the
/// rules it routes with.
///
/// `start` binds every listener (the port 0 of a listener is the kernel's pick; `ports` says
/// which). `reload(_:)` swaps the rules for every request that starts afterwards.
/// `shutdown(gracePeriod:)` drains: listeners close, idle keep-alive connections close, every
/// request in flight gets its answer, and after the grace period what is left is closed hard.
public final class Gateway: Sendable {
    public let configuration: GatewayConfiguration
    /// The counters and gauges the gateway keeps (exported by the admin `/metrics`).
    public let metrics: GatewayMetrics
    private let listeners: [any Channel]
    private let connections: ConnectionDrainer
    private let routes: RoutesHolder
    private let health: HealthBoard
    private let checker: Mutex<HealthChecker?>
    private let loops: [ObjectIdentifier: NIOLoopBound<LoopState>]
    private let controlLoop: any EventLoop
    private let logger: Logger
    private let draining = Atomic(false)
    private let certificates: [CertificateStore]
    private let certificateWatch: Task<Void, Never>?
    /// Sweeps lapsed in-flight flags, idle window entries and ended bans now and then, so the
    /// tables hold what is live rather than growing to their bounds.
    private let sweeper: Task<Void, Never>
    /// Shares the `scope: cluster` window counts and the bans through Redis (only with a Redis).
    private let clusterSync: Task<Void, Never>?
    /// Moves the warm-up gate on and reads the sold-out routes' stock in Redis.
    private let overloadWatch: Task<Void, Never>?
    /// The warm-up gate and the sold-out latches (shared with every connection).
    let warmup: WarmupController
    let soldOut: SoldOutBoard
    /// Written until the gateway has drained.
    private let accessLog: AccessLog?
    static let sweepInterval = Duration.seconds(10)
    /// Exclusive Redis connections per event loop (the in-flight flags' `watch` mode leases one
    /// per transaction).
    static let exclusiveRedisConnectionsPerLoop = 32

    /// How often certificate files are looked at for a renewal.
    static let certificateCheckInterval = Duration.seconds(2)

    private init(
        configuration: GatewayConfiguration,
        listeners: [any Channel],
        connections: ConnectionDrainer,
        routes: RoutesHolder,
        health: HealthBoard,
        loops: [ObjectIdentifier: NIOLoopBound<LoopState>],
        controlLoop: any EventLoop,
        certificates: [CertificateStore],
        redis: RedisClient?,
        abuse: AbuseGuard,
        inFlight: InFlightRegistry,
        flagStore: RedisFlagStore?,
        warmup: WarmupController,
        soldOut: SoldOutBoard,
        accessLog: AccessLog?,
        scriptsLoaded: Bool,
        metrics: GatewayMetrics,
        logger: Logger
    ) {
        self.redis = redis
        self.warmup = warmup
        self.soldOut = soldOut
        self.accessLog = accessLog
        self.abuse = abuse
        self.flagStore = flagStore
        self.sweeper = Task { [inFlight] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.sweepInterval)
                let now = MonotonicInstant.now()
                abuse.sweep(now: now)
                inFlight.sweep(now: now)
            }
        }
        self.clusterSync = redis.map { client in
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: ClusterWindowSync.interval)
                    await ClusterWindowSync.round(abuse: abuse, client: client, logger: logger)
                    await ClusterBanSync.round(abuse: abuse, client: client, logger: logger)
                }
            }
        }
        self.overloadWatch = Task { [routes, health, loops] in
            var watch = OverloadWatch(
                phase: warmup.status(now: .now()).phase, redis: redis, flagStore: flagStore, scriptsLoaded: scriptsLoaded, warmup: warmup, soldOut: soldOut,
                routes: routes, health: health, loops: Array(loops.values), metrics: metrics, logger: logger
            )
            while !Task.isCancelled {
                try? await Task.sleep(for: WarmupController.updateInterval)
                await watch.round(now: .now())
            }
        }
        self.metrics = metrics
        self.certificates = certificates
        // Polled, as the rule files are: renewals (certbot, a secrets agent) replace files on
        // their own schedule, and a stat every 2 s costs nothing.
        self.certificateWatch = certificates.isEmpty ? nil : Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.certificateCheckInterval)
                for store in certificates {
                    store.reloadIfChanged()
                }
            }
        }
        self.configuration = configuration
        self.listeners = listeners
        self.connections = connections
        self.routes = routes
        self.health = health
        self.checker = Mutex(nil)
        self.loops = loops
        self.controlLoop = controlLoop
        self.logger = logger
    }

    /// The Redis the gateway shares state through (`redis:` in the configuration), if any.
    let redis: RedisClient?
    /// The in-flight flags kept in that Redis.
    private let flagStore: RedisFlagStore?
    /// The sliding windows and bans.
    let abuse: AbuseGuard

    /// The bans in force now (client addresses and accounts), longest-running first.
    public func blocked(kind: BanList.Kind? = nil) -> [BanList.Ban] {
        let bans = self.abuse.bans(now: .now())
        return kind.map { kind in bans.filter { $0.kind == kind } } ?? bans
    }

    /// Clients challenged within a window length (the rule, why, since when, how many
    /// challenges), oldest first; `kind` keeps only addresses or accounts.
    public func challenged(kind: BanList.Kind? = nil) -> [BanList.Ban] {
        let records = self.abuse.challenged(now: .now())
        return kind.map { kind in records.filter { $0.kind == kind } } ?? records
    }

    /// Sets the gauges that are read when metrics are scraped: backends, bans and challenged
    /// clients, the active rules version.
    public func refreshScrapedMetrics(at now: MonotonicInstant = .now()) {
        self.metrics.record(self.backendStatus(at: now))
        let bans = self.abuse.bans(now: now)
        let accounts = bans.filter { $0.kind == .account }.count
        self.metrics.recordBlocked(bannedIPs: bans.count - accounts, bannedAccounts: accounts, challenged: self.abuse.challenged(now: now).count, passesInUse: self.abuse.passesInUse())
        self.metrics.recordRulesVersion(self.ruleSet.version)
    }

    /// The characters of the open image CAPTCHA `id` (admin `captcha_answers`, load tests only).
    public func captchaAnswer(id: String) -> String? {
        self.abuse.captchaAnswer(id: id, now: .now())
    }

    /// Lifts the ban of `key`; returns whether there was one.
    @discardableResult
    public func unblock(_ kind: BanList.Kind, _ key: String) -> Bool {
        let lifted = self.abuse.lift(kind, key)
        if lifted {
            self.logger.info("ban lifted", metadata: ["kind": "\(kind.rawValue)", "key": "\(key)"])
        }
        return lifted
    }

    /// The bound port of each listener, in configuration order.
    public var ports: [Int] {
        self.listeners.map { $0.localAddress?.port ?? 0 }
    }

    /// The rules requests are routed with now.
    public var ruleSet: RuleSet {
        self.routes.routes.ruleSet
    }

    /// Client connections open now.
    public var openConnections: Int {
        self.connections.count
    }

    /// The warm-up gate now: its phase, the share of public requests it lets through, and
    /// what it waits for (when it holds traffic back).
    public func warmupStatus(at now: MonotonicInstant = .now()) -> (phase: WarmupGate.Phase, share: Double, waitingFor: String?) {
        self.warmup.status(now: now)
    }

    /// The admission control of `upstream`, all event loops together: requests under way and
    /// waiting, the limit now (the sum of the loops' shares), and the longest any admitted
    /// request waited for its slot.
    public func admission(upstream: String) async -> (inFlight: Int, queued: Int, limit: Int, longestWait: Duration) {
        await LoopAdmission.total(upstream: upstream, over: self.loops.values)
    }

    /// Whether the route `id` (`POST /buy/ticket`) is answered "sold out" by its latch now, and
    /// how many requests the latch answered since it closed.
    public func soldOutState(route id: String) -> (latched: Bool, answered: Int) {
        self.soldOut.state(route: id)
    }

    /// Whether the gateway should get traffic: not draining, the warm-up gate past warming
    /// (ramping or ready), and every upstream has at least one backend that takes traffic.
    public func readiness(at now: MonotonicInstant = .now()) -> (ready: Bool, reason: String) {
        if self.draining.load(ordering: .relaxed) {
            return (false, "draining")
        }
        let status = self.backendStatus(at: now)
        let empty = self.ruleSet.upstreams.filter { upstream in
            !status.contains { $0.upstream == upstream.name && $0.effectiveWeight > 0 }
        }
        guard empty.isEmpty else {
            return (false, "no healthy backend in upstream " + empty.map(\.name).joined(separator: ", "))
        }
        let warmup = self.warmup.status(now: now)
        if warmup.phase == .starting || warmup.phase == .warming {
            return (false, "warming up: " + (warmup.waitingFor ?? "waiting"))
        }
        return (true, "serving")
    }

    /// Every backend of the active rules with its configured and effective weight and its
    /// health phase at `now`.
    public func backendStatus(at now: MonotonicInstant = .now()) -> [BackendStatus] {
        self.health.entries(for: self.ruleSet.upstreams, at: now).map { entry in
            var phase = "serving"
            var rampUntil: MonotonicInstant?
            var ejectedUntil: MonotonicInstant?
            switch entry.phase {
            case .serving(let until):
                rampUntil = until
            case .down:
                phase = "down"
            case .ejected(let until):
                phase = "ejected"
                ejectedUntil = until
            }
            return BackendStatus(
                upstream: entry.key.upstream,
                endpoint: entry.key.endpoint,
                weight: entry.weight,
                effectiveWeight: entry.effectiveWeight,
                phase: phase,
                rampUntil: rampUntil,
                ejectedUntil: ejectedUntil
            )
        }
    }

    /// Binds the listeners and starts the health checks.
    public static func start(
        configuration: GatewayConfiguration,
        rules: RuleSet,
        group: any EventLoopGroup,
        metrics: GatewayMetrics = GatewayMetrics(),
        logger: Logger = Logger(label: "spikegate.gateway")
    ) async throws -> Gateway {
        // Redis is dialled now but not waited for: the gateway serves without it (each rule's
        // on_store_error decides) and the client keeps re-dialling.
        var redis: RedisClient?
        var redisAnswered = false
        if let url = configuration.redis {
            let client: RedisClient
            do {
                var redisConfiguration = try RedisConfiguration(url: url)
                // WATCH needs a connection of its own per transaction under way: with purchases
                // from a hundred clients at once, 8 per loop (the client's default) queue them.
                redisConfiguration.exclusiveConnectionsPerLoop = Self.exclusiveRedisConnectionsPerLoop
                client = RedisClient(configuration: redisConfiguration, eventLoopGroup: group, logger: logger, observer: metrics.redisObserver())
            } catch {
                throw GatewayStartError(message: "redis '\(url)': \(error)")
            }
            do {
                try await client.connect()
                redisAnswered = true
            } catch {
                logger.warning("redis not reachable yet; per-account rules follow on_store_error until it is", metadata: [
                    "redis": "\(url)", "error": "\(error)",
                ])
            }
            redis = client
        }
        var accessLog: AccessLog?
        if let path = configuration.accessLog {
            do {
                accessLog = try AccessLog(path: path, eventLoop: group.next(), logger: logger)
            } catch {
                throw GatewayStartError(message: "\(error)")
            }
        }
        let settings = ProxySettings(configuration: configuration, metrics: metrics, redis: redis, accessLog: accessLog)
        var scriptsLoaded = false
        if let flagStore = settings.flagStore, redisAnswered {
            // The flag scripts into Redis's cache before the first purchase. Not fatal: a script
            // missing from the cache is loaded on first use (EVALSHA answers NOSCRIPT); the
            // warm-up gate waits for them (the overload watch tries again).
            do {
                try await flagStore.loadScripts()
                scriptsLoaded = true
            } catch {
                logger.warning("in-flight flag scripts not loaded into redis; loaded on first use", metadata: ["error": "\(error)"])
            }
        }
        let routes = RoutesHolder(ruleSet: rules, metrics: metrics)
        let health = HealthBoard()
        health.sync(upstreams: rules.upstreams)
        var loops: [ObjectIdentifier: NIOLoopBound<LoopState>] = [:]
        let loopCount = Array(group.makeIterator()).count
        let epoch = MonotonicInstant.now()
        for (index, loop) in group.makeIterator().enumerated() {
            let prefix = String(UInt32.random(in: .min ... .max), radix: 16) + "-"
            let bound = try await loop.submit {
                let pool = UpstreamPool(
                    eventLoop: loop,
                    connectTimeout: settings.upstreamConnectTimeout,
                    maximumIdle: configuration.limits.upstreamIdlePerLoop,
                    outboundBufferBytes: settings.outboundBufferBytes
                )
                let admission = LoopAdmission(
                    configuration: configuration.admission, loopIndex: index, loopCount: loopCount, epoch: epoch, eventLoop: loop
                )
                return NIOLoopBound(
                    LoopState(pool: pool, admission: admission, routes: routes, health: health, requestPrefix: prefix), eventLoop: loop
                )
            }.get()
            loops[ObjectIdentifier(loop)] = bound
        }
        let connections = ConnectionDrainer()
        let admission = ConnectionAdmission(
            counter: ConnectionCounter(
                maximumConnections: configuration.limits.maximumConnections,
                maximumPerAddress: configuration.limits.maximumConnectionsPerIP
            ),
            metrics: metrics,
            logger: logger
        )
        var listeners: [any Channel] = []
        var certificates: [CertificateStore] = []
        do {
            for listener in configuration.listeners {
                let tls = try listener.tls.map { try CertificateStore(source: $0, logger: logger) }
                if let tls {
                    certificates.append(tls)
                }
                let channel = try await Self.bind(
                    listener,
                    tls: tls,
                    settings: settings,
                    routes: routes,
                    loops: loops,
                    admission: admission,
                    connections: connections,
                    group: group,
                    logger: logger
                )
                listeners.append(channel)
                logger.info("gateway listening", metadata: [
                    "address": "\(listener.endpoint.host):\(channel.localAddress?.port ?? listener.endpoint.port)",
                    "proxy_protocol": "\(listener.proxyProtocol)", "tls": "\(listener.tls.map { "\($0)" } ?? "off")",
                ])
            }
        } catch {
            for channel in listeners {
                try? await channel.close()
            }
            throw error
        }
        let gateway = Gateway(
            configuration: configuration,
            listeners: listeners,
            connections: connections,
            routes: routes,
            health: health,
            loops: loops,
            controlLoop: group.next(),
            certificates: certificates,
            redis: redis,
            abuse: settings.abuse,
            inFlight: settings.inFlight,
            flagStore: settings.flagStore,
            warmup: settings.warmup,
            soldOut: settings.soldOut,
            accessLog: settings.accessLog,
            scriptsLoaded: scriptsLoaded,
            metrics: metrics,
            logger: logger
        )
        gateway.restartHealthChecks(rules.upstreams)
        await gateway.awaitFirstChecks(rules: rules, redisAnswered: redisAnswered, scriptsLoaded: scriptsLoaded)
        logger.info("rules active", metadata: [
            "version": "\(rules.version)", "upstreams": "\(rules.upstreams.count)", "routes": "\(rules.routes.count)",
        ])
        return gateway
    }

    /// Waits (at most the longest health-check timeout, and a little) for the first check of
    /// each backend, so the warm-up gate opens as soon as they pass rather than a round later.
    private func awaitFirstChecks(rules: RuleSet, redisAnswered: Bool, scriptsLoaded: Bool) async {
        let bound = (rules.upstreams.map(\.healthCheck.timeout).max() ?? .zero) + .milliseconds(100)
        let start = MonotonicInstant.now()
        let conditions = { [health] (now: MonotonicInstant) in
            WarmupGate.Conditions(
                redisAnswers: redisAnswered, scriptsLoaded: scriptsLoaded, rulesCompiled: true,
                healthyBackends: health.provenHealthy(in: rules.upstreams, at: now)
            )
        }
        while true {
            let now = MonotonicInstant.now()
            let phase = self.warmup.update(conditions(now), now: now).phase
            if phase != .warming && phase != .starting || now - start >= bound {
                break
            }
            // Polled: the checks run on their own timers and report to the board, which has
            // no way to wake a waiter; 2 ms steps, bounded by the longest check timeout.
            try? await Task.sleep(for: .milliseconds(2))
        }
        let status = self.warmup.status(now: .now())
        self.metrics.recordWarmup(phase: status.phase, share: status.share)
        if let waiting = status.waitingFor {
            self.logger.warning("warming up: public requests get 503 until the gateway is warm", metadata: ["detail": "\(waiting)"])
        }
    }

    private static func bind(
        _ listener: Listener,
        tls: CertificateStore?,
        settings: ProxySettings,
        routes: RoutesHolder,
        loops: [ObjectIdentifier: NIOLoopBound<LoopState>],
        admission: ConnectionAdmission,
        connections: ConnectionDrainer,
        group: any EventLoopGroup,
        logger: Logger
    ) async throws -> any Channel {
        let water = ChannelOptions.Types.WriteBufferWaterMark(low: settings.outboundBufferBytes / 2, high: settings.outboundBufferBytes)
        let scheme = listener.tls == nil ? "http" : "https"
        return try await ServerBootstrap(group: group)
            // A crowd connects at once: a deep accept queue (the kernel caps it at somaxconn),
            // emptied many connections per wake-up rather than NIO's 4, so a busy loop does not
            // leave connected clients waiting to be accepted.
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.maxMessagesPerRead, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: water)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let peer = channel.remoteAddress?.ipAddress.flatMap({ IPAddress($0) }),
                          let loop = loops[ObjectIdentifier(channel.eventLoop)]?.value
                    else {
                        channel.close(promise: nil)
                        return
                    }
                    connections.register(channel)
                    let pipeline = channel.pipeline.syncOperations
                    if listener.proxyProtocol && routes.routes.ruleSet.trustedProxies.contains(peer) {
                        // The real client is named by the PROXY header; it is counted then.
                        try pipeline.addHandler(ProxyProtocolHandler { header in
                            guard let source = header.source else {
                                return true
                            }
                            return admission.admit(source.address, channel: channel)
                        })
                    } else if !admission.admit(peer, channel: channel) {
                        channel.close(promise: nil)
                        return
                    }
                    if let tls {
                        try pipeline.addHandler(NIOSSLServerHandler(context: tls.context))
                    }
                    let connectionGuard = ConnectionGuard(configuration: settings.deadlines) { expiry in
                        settings.metrics.count(expiry)
                        logger.debug("client connection timed out", metadata: ["peer": "\(peer)", "limit": "\(expiry)"])
                    }
                    try pipeline.addHandler(connectionGuard)
                    // No NIO HTTP codec: ProxyServerHandler reads and writes HTTP/1 bytes itself,
                    // holds pipelined requests back and does not pause reading between requests.
                    try pipeline.addHandler(ProxyServerHandler(
                        loop: loop,
                        connectionGuard: connectionGuard,
                        settings: settings,
                        peer: peer,
                        scheme: scheme,
                        logger: logger
                    ))
                }
            }
            .bind(host: listener.endpoint.host, port: listener.endpoint.port).get()
    }

    /// Looks at every listener's certificate and key files now and loads those that changed
    /// (the gateway also does this every `certificateCheckInterval`). Returns how many
    /// listeners got a new certificate.
    @discardableResult
    public func reloadCertificates() -> Int {
        self.certificates.reduce(0) { $0 + ($1.reloadIfChanged() ? 1 : 0) }
    }

    /// Swaps in `rules` for every request that starts from now on; health records of backends
    /// still configured are kept.
    public func reload(_ rules: RuleSet) {
        self.health.sync(upstreams: rules.upstreams)
        self.routes.swap(to: rules)
        self.restartHealthChecks(rules.upstreams)
        self.logger.info("rules active", metadata: [
            "version": "\(rules.version)", "upstreams": "\(rules.upstreams.count)", "routes": "\(rules.routes.count)",
        ])
    }

    private func restartHealthChecks(_ upstreams: [Upstream]) {
        let started = HealthChecker.start(upstreams: upstreams, board: self.health, eventLoop: self.controlLoop, logger: self.logger)
        let previous = self.checker.withLock { checker in
            defer { checker = started }
            return checker
        }
        if let previous {
            Task { await previous.stop() }
        }
    }

    /// Drains and stops: listeners close at once, idle keep-alive connections close, each
    /// request in flight gets its answer (connections still open after `gracePeriod` are
    /// closed hard); then health checks stop and upstream pools close.
    public func shutdown(gracePeriod: Duration = .seconds(10)) async {
        self.draining.store(true, ordering: .relaxed)
        self.warmup.drain()
        self.overloadWatch?.cancel()
        self.certificateWatch?.cancel()
        self.sweeper.cancel()
        self.clusterSync?.cancel()
        for channel in self.listeners {
            try? await channel.close()
        }
        if await !self.connections.drain(on: self.controlLoop, gracePeriod: gracePeriod.timeAmount) {
            self.logger.warning("connections were still open after the grace period; closed them", metadata: [
                "grace": "\(gracePeriod)",
            ])
        }
        let checker = self.checker.withLock { checker in
            defer { checker = nil }
            return checker
        }
        await checker?.stop()
        for bound in self.loops.values {
            try? await bound.eventLoop.submit {
                bound.value.pool.closeAll()
            }.get()
        }
        // The flags of the last requests go back to Redis before its connections close (else
        // they would hold their accounts until their TTL).
        if let flagStore = self.flagStore, await !flagStore.waitForReleases(upTo: .seconds(2)) {
            self.logger.warning("in-flight flags still being given back at shutdown; they lapse at their TTL")
        }
        await self.redis?.shutdown()
        do {
            try await self.accessLog?.close(on: self.controlLoop)
        } catch {
            self.logger.error("access log not closed cleanly", metadata: ["error": "\(error)"])
        }
    }
}

/// The gateway could not start: what was wrong.
public struct GatewayStartError: Error, CustomStringConvertible {
    public let message: String

    public var description: String {
        self.message
    }
}

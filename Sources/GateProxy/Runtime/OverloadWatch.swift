import GateCore
import GateRedis
import GateRules
import Logging
import NIOCore

/// What the gateway looks at every `WarmupController.updateInterval` for the overload
/// controls: whether Redis answers and its scripts are loaded, how many backends passed their
/// checks (→ the warm-up gate), and the stock in Redis of the routes whose `sold_out:` names
/// one (→ their latches, each at its `recheck`); and it sets the admission and Redis gauges.
struct OverloadWatch {
    let redis: RedisClient?
    let flagStore: RedisFlagStore?
    var scriptsLoaded: Bool
    let warmup: WarmupController
    let soldOut: SoldOutBoard
    let routes: RoutesHolder
    let health: HealthBoard
    /// Every event loop's state (their admission counts are summed for the gauges).
    let loops: [NIOLoopBound<LoopState>]
    let metrics: GatewayMetrics
    let logger: Logger
    /// When each route's stock is read next (by route id).
    private var nextStockRead: [String: MonotonicInstant] = [:]
    private var lastPhase: WarmupGate.Phase?

    init(phase: WarmupGate.Phase, 
        redis: RedisClient?, flagStore: RedisFlagStore?, scriptsLoaded: Bool, warmup: WarmupController, soldOut: SoldOutBoard,
        routes: RoutesHolder, health: HealthBoard, loops: [NIOLoopBound<LoopState>], metrics: GatewayMetrics, logger: Logger
    ) {
        self.loops = loops
        self.redis = redis
        self.flagStore = flagStore
        self.scriptsLoaded = scriptsLoaded
        self.warmup = warmup
        self.soldOut = soldOut
        self.routes = routes
        self.health = health
        self.metrics = metrics
        self.logger = logger
        self.lastPhase = phase
    }

    mutating func round(now: MonotonicInstant) async {
        var redisAnswers = false
        if let redis {
            redisAnswers = (try? await redis.send("PING")) != nil
            self.metrics.recordRedisCircuits(open: await redis.circuitPhases().filter { $0 != .closed }.count)
            if redisAnswers, !self.scriptsLoaded, let flagStore = self.flagStore {
                self.scriptsLoaded = (try? await flagStore.loadScripts()) != nil
            }
        }
        let rules = self.routes.routes.ruleSet
        // Warming up, a backend counts once it passed a check; once warm, while it takes
        // traffic (backends a rules reload adds are not checked yet, and are not a loss).
        let warm = self.lastPhase == .ramping || self.lastPhase == .ready
        let conditions = WarmupGate.Conditions(
            redisAnswers: redisAnswers,
            scriptsLoaded: self.scriptsLoaded || self.flagStore == nil,
            rulesCompiled: true,
            healthyBackends: warm ? self.health.serving(in: rules.upstreams, at: now) : self.health.provenHealthy(in: rules.upstreams, at: now)
        )
        let (phase, waitingFor) = self.warmup.update(conditions, now: now)
        if phase != self.lastPhase {
            self.logger.notice("warm-up gate: \(phase.rawValue)", metadata: waitingFor.map { ["detail": "\($0)"] } ?? [:])
            self.lastPhase = phase
        }
        self.metrics.recordWarmup(phase: phase, share: self.warmup.status(now: now).share)
        if let redis, redisAnswers {
            await self.readStock(rules: rules, redis: redis, now: now)
        }
        self.metrics.recordSoldOut(latchedRoutes: self.soldOut.latchedRoutes)
        await self.recordAdmission(rules: rules)
    }

    /// Sums the loops' admission counts per upstream into the gauges.
    private func recordAdmission(rules: RuleSet) async {
        for upstream in rules.upstreams {
            let total = await LoopAdmission.total(upstream: upstream.name, over: self.loops)
            self.metrics.recordAdmission(upstream: upstream.name, inFlight: total.inFlight, queued: total.queued, limit: total.limit)
        }
    }

    /// Reads the stock of each route that names one and is due: none left latches the route,
    /// some left opens it.
    private mutating func readStock(rules: RuleSet, redis: RedisClient, now: MonotonicInstant) async {
        for route in rules.routes {
            guard let policy = route.soldOut, let stock = policy.stock, now >= self.nextStockRead[route.id] ?? now else {
                continue
            }
            self.nextStockRead[route.id] = now + policy.recheck
            do {
                let reply = try await redis.send(RedisCommand("HMGET", .string(stock.key), .string(stock.totalField), .string(stock.soldField)))
                guard let fields = reply.array, fields.count == 2, let total = fields[0].int else {
                    // No such sale (yet): nothing to say.
                    continue
                }
                let remaining = total - (fields[1].int ?? 0)
                if remaining <= 0 {
                    self.soldOut.latch(route: route.id, recheck: policy.recheck, answer: nil, now: now)
                } else {
                    self.soldOut.open(route: route.id)
                }
            } catch {
                self.logger.debug("sold-out stock not read", metadata: ["route": "\(route.id)", "key": "\(stock.key)", "error": "\(error)"])
            }
        }
    }
}

import CoreMetrics
import GateCore
import GateRedis
import GateRules
import Synchronization

/// The gateway's metrics, made once through a swift-metrics factory (Prometheus in the CLI,
/// whatever the caller passes in tests), so the hot path only increments.
///
/// Names follow Prometheus' conventions (`spikegate_` prefix, `_total` for counters); the
/// admin listener's `/metrics` exports them.
public final class GatewayMetrics: Sendable {
    /// Why a request was answered the way it was.
    enum Decision: String, CaseIterable {
        /// Sent to a backend, whose answer went back.
        case forwarded
        /// Refused by the head check (smuggling, sizes, syntax).
        case refused
        /// No route matched.
        case noRoute = "no_route"
        /// No backend could be reached, or it failed before answering (502/503/504).
        case upstreamFailed = "upstream_failed"
        /// Refused: the account already has a request in flight (429).
        case inFlightRefused = "in_flight_refused"
        /// Refused: over a window's `limit_above` (429).
        case rateLimited = "rate_limited"
        /// Refused: the client address or account is banned (403).
        case banned
        /// Answered with a challenge (429).
        case challenged
        /// A challenge solved: a pass issued.
        case challengeSolved = "challenge_solved"
        /// A solution refused (wrong, expired, someone else's, already used) (403).
        case challengeFailed = "challenge_failed"
        /// Refused: the client's network is on a deny list (403).
        case denied
        /// Refused: the upstream was at its admission limit (503, by reason in
        /// `spikegate_shed_total`).
        case shed
        /// Answered "sold out" by the route's latch.
        case soldOut = "sold_out"
        /// Refused: the gateway is warming up (503).
        case warmupRefused = "warmup_refused"
        /// Its place in `allCases` (a switch: no array and no hash per request).
        var ordinal: Int {
            switch self {
            case .forwarded: 0
            case .refused: 1
            case .noRoute: 2
            case .upstreamFailed: 3
            case .inFlightRefused: 4
            case .rateLimited: 5
            case .banned: 6
            case .challenged: 7
            case .challengeSolved: 8
            case .challengeFailed: 9
            case .denied: 10
            case .shed: 11
            case .soldOut: 12
            case .warmupRefused: 13
            }
        }
    }

    private let factory: any MetricsFactory
    private let shedByReason: [AdmissionQueue<UInt64>.Refusal: Counter]
    /// Requests a `shadow` window would have refused or banned (they were forwarded).
    let windowShadowed: Counter
    /// Requests a `shadow` in-flight rule would have refused (they were forwarded).
    let inFlightShadowed: Counter
    /// In-flight checks Redis could not answer (the rule's `on_store_error` decided).
    let inFlightStoreErrors: Counter
    private let idleTimeouts: Counter
    private let headerTimeouts: Counter
    private let slowBodyTimeouts: Counter
    let connectionsOpen: Meter
    let connectionsRefused: Counter
    let upstreamConnectFailures: Counter
    let backendEjections: Counter
    let rulesReloaded: Counter
    let rulesRefused: Counter
    /// Backends whose gauges were set (a backend that left the rules is set to 0 once).
    private let knownBackends = Mutex<Set<[String]>>([])
    /// The rules version last recorded as active.
    private let activeVersion = Mutex<String?>(nil)

    /// Metrics made by `factory` (default: the process-wide `MetricsSystem`).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        func timeouts(_ limit: String) -> Counter {
            Counter(label: "spikegate_client_timeouts_total", dimensions: [("limit", limit)], factory: factory)
        }
        self.shedByReason = Dictionary(uniqueKeysWithValues: AdmissionQueue<UInt64>.Refusal.allCases.map { reason in
            (reason, Counter(label: "spikegate_shed_total", dimensions: [("reason", reason.rawValue)], factory: factory))
        })
        self.windowShadowed = Counter(label: "spikegate_shadow_refusals_total", dimensions: [("rule", "window")], factory: factory)
        self.inFlightStoreErrors = Counter(label: "spikegate_store_errors_total", dimensions: [("rule", "in_flight")], factory: factory)
        self.inFlightShadowed = Counter(label: "spikegate_shadow_refusals_total", dimensions: [("rule", "in_flight")], factory: factory)
        self.idleTimeouts = timeouts("idle")
        self.headerTimeouts = timeouts("header")
        self.slowBodyTimeouts = timeouts("slow_body")
        self.connectionsOpen = Meter(label: "spikegate_connections_open", factory: factory)
        self.connectionsRefused = Counter(label: "spikegate_connections_refused_total", factory: factory)
        self.upstreamConnectFailures = Counter(label: "spikegate_upstream_connect_failures_total", factory: factory)
        self.backendEjections = Counter(label: "spikegate_backend_ejections_total", factory: factory)
        self.rulesReloaded = Counter(label: "spikegate_rules_reloads_total", dimensions: [("result", "applied")], factory: factory)
        self.rulesRefused = Counter(label: "spikegate_rules_reloads_total", dimensions: [("result", "refused")], factory: factory)
    }

    /// The request counters of one rule set: one per route and decision, and one per decision
    /// for requests no route took (`route="-"`), made when the rules are installed so a request
    /// only indexes an array.
    final class RouteCounters: Sendable {
        fileprivate let byRoute: [[Counter]]
        fileprivate let unrouted: [Counter]

        fileprivate init(byRoute: [[Counter]], unrouted: [Counter]) {
            self.byRoute = byRoute
            self.unrouted = unrouted
        }
    }

    /// `spikegate_requests_total{route,decision}` for the routes `ids` (in rule order).
    func routeCounters(for ids: [String]) -> RouteCounters {
        func counters(_ route: String) -> [Counter] {
            // Placed by ordinal, whatever the order of `allCases`.
            Decision.allCases.sorted { $0.ordinal < $1.ordinal }.map { decision in
                Counter(label: "spikegate_requests_total", dimensions: [("route", route), ("decision", decision.rawValue)], factory: self.factory)
            }
        }
        return RouteCounters(byRoute: ids.map(counters), unrouted: counters("-"))
    }

    /// Counts a request answered as `decision` on the route at `route` of `counters` (`nil`: no
    /// route took it).
    func count(_ decision: Decision, route: Int?, in counters: RouteCounters) {
        let index = decision.ordinal
        if let route, route < counters.byRoute.count {
            counters.byRoute[route][index].increment()
        } else {
            counters.unrouted[index].increment()
        }
    }

    /// A request shed for `reason` (counted as the `shed` decision where it is answered).
    func countShed(_ reason: AdmissionQueue<UInt64>.Refusal) {
        self.shedByReason[reason]?.increment()
    }

    /// Sets the warm-up gauges: 1 for the phase the gate is in, 0 for the others, and the share
    /// of public requests admitted.
    func recordWarmup(phase: WarmupGate.Phase, share: Double) {
        for each in WarmupGate.Phase.allCases {
            Gauge(label: "spikegate_warmup_phase", dimensions: [("phase", each.rawValue)], factory: self.factory).record(each == phase ? 1 : 0)
        }
        Gauge(label: "spikegate_warmup_admitted_ratio", factory: self.factory).record(share)
    }

    /// The histogram of `backend`'s answer times (admission to the answer's head), in seconds.
    /// Made once per backend by each event loop (`LoopState` keeps it): the factory takes a lock.
    func upstreamResponseTimer(_ backend: BackendKey) -> Timer {
        Timer(
            label: "spikegate_upstream_response_seconds",
            dimensions: [("upstream", backend.upstream), ("backend", backend.endpoint.description)],
            preferredDisplayUnit: .seconds,
            factory: self.factory
        )
    }

    /// Sets the admission gauges of `upstream`: requests under way, waiting, and the limit
    /// (all event loops together).
    func recordAdmission(upstream: String, inFlight: Int, queued: Int, limit: Int) {
        let dimensions = [("upstream", upstream)]
        Gauge(label: "spikegate_admission_in_flight", dimensions: dimensions, factory: self.factory).record(inFlight)
        Gauge(label: "spikegate_admission_queued", dimensions: dimensions, factory: self.factory).record(queued)
        Gauge(label: "spikegate_admission_limit", dimensions: dimensions, factory: self.factory).record(limit)
    }

    /// Sets the gauges of bans in force, by kind, of clients under a challenge and of passes in
    /// use (unexpired, with budget left).
    func recordBlocked(bannedIPs: Int, bannedAccounts: Int, challenged: Int, passesInUse: Int) {
        Gauge(label: "spikegate_bans_active", dimensions: [("kind", "ip")], factory: self.factory).record(bannedIPs)
        Gauge(label: "spikegate_bans_active", dimensions: [("kind", "account")], factory: self.factory).record(bannedAccounts)
        Gauge(label: "spikegate_challenged_clients", factory: self.factory).record(challenged)
        Gauge(label: "spikegate_passes_in_use", factory: self.factory).record(passesInUse)
    }

    /// Sets `spikegate_redis_circuit_open` to the connections whose circuit breaker is open
    /// or half-open (0: Redis answers), when the gateway has a Redis.
    func recordRedisCircuits(open: Int) {
        Gauge(label: "spikegate_redis_circuits_open", factory: self.factory).record(open)
    }

    /// Sets `spikegate_rules_active{version}` to 1 for the rules in force (and 0 for the ones
    /// before).
    func recordRulesVersion(_ version: String) {
        let previous = self.activeVersion.withLock { active -> String? in
            defer { active = version }
            return active
        }
        if let previous, previous != version {
            Gauge(label: "spikegate_rules_active", dimensions: [("version", previous)], factory: self.factory).record(0)
        }
        Gauge(label: "spikegate_rules_active", dimensions: [("version", version)], factory: self.factory).record(1)
    }

    /// What the gateway's Redis client reports of each command: `spikegate_redis_command_seconds`
    /// (histogram) and `spikegate_redis_errors_total{code}`.
    func redisObserver() -> RedisClient.Observer {
        let shared = Timer(label: "spikegate_redis_command_seconds", dimensions: [("connection", "shared")], preferredDisplayUnit: .seconds, factory: self.factory)
        let leased = Timer(label: "spikegate_redis_command_seconds", dimensions: [("connection", "leased")], preferredDisplayUnit: .seconds, factory: self.factory)
        let factory = self.factory
        let errors = CounterTable()
        return { duration, failure, onLease in
            (onLease ? leased : shared).recordNanoseconds(duration.nanosecondsClamped)
            guard let failure else {
                return
            }
            let code = String(failure.code.description.map { $0 == " " ? "_" : $0 })
            let counter = errors.made.withLock { made in
                if let counter = made[code] {
                    return counter
                }
                let counter = Counter(label: "spikegate_redis_errors_total", dimensions: [("code", code)], factory: factory)
                made[code] = counter
                return counter
            }
            counter.increment()
        }
    }

    /// Counters made on first use, by label value.
    private final class CounterTable: Sendable {
        let made = Mutex<[String: Counter]>([:])
    }

    /// Sets the gauge of routes answered by their sold-out latch.
    func recordSoldOut(latchedRoutes: Int) {
        Gauge(label: "spikegate_sold_out_latched_routes", factory: self.factory).record(latchedRoutes)
    }

    func count(_ expiry: ConnectionDeadlines.Expiry) {
        switch expiry {
        case .idle:
            self.idleTimeouts.increment()
        case .header:
            self.headerTimeouts.increment()
        case .slowBody:
            self.slowBodyTimeouts.increment()
        }
    }

    /// Sets the per-backend gauges (weights in configured units, 1 when taking traffic).
    func record(_ backends: [BackendStatus]) {
        var seen: Set<[String]> = []
        for backend in backends {
            let key = [backend.upstream, backend.endpoint.description]
            seen.insert(key)
            self.setBackend(key, weight: Double(backend.effectiveWeight) / Double(HealthBoard.scale), up: backend.effectiveWeight > 0)
        }
        let gone = self.knownBackends.withLock { known -> Set<[String]> in
            defer { known = seen }
            return known.subtracting(seen)
        }
        for key in gone {
            self.setBackend(key, weight: 0, up: false)
        }
    }

    private func setBackend(_ key: [String], weight: Double, up: Bool) {
        let dimensions = [("upstream", key[0]), ("backend", key[1])]
        Gauge(label: "spikegate_backend_effective_weight", dimensions: dimensions, factory: self.factory).record(weight)
        Gauge(label: "spikegate_backend_up", dimensions: dimensions, factory: self.factory).record(up ? 1 : 0)
    }
}

import GateCore
import GateRules
import Synchronization

/// The rules the proxy routes with, swapped whole when the rule files change.
final class ProxyRoutes: Sendable {
    let ruleSet: RuleSet
    let resolver: ClientAddressResolver
    let upstreams: [String: Upstream]
    /// Counts the swaps; an event loop's cached copy is current while the numbers match.
    let generation: Int
    /// `spikegate_requests_total{route,decision}` for these routes.
    let counters: GatewayMetrics.RouteCounters

    init(ruleSet: RuleSet, generation: Int, metrics: GatewayMetrics) {
        self.ruleSet = ruleSet
        self.counters = metrics.routeCounters(for: ruleSet.routes.map(\.id))
        self.resolver = ClientAddressResolver(trustedProxies: ruleSet.trustedProxies)
        self.upstreams = Dictionary(ruleSet.upstreams.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.generation = generation
    }
}

/// The current `ProxyRoutes`, read by every event loop without a lock on the hot path: a loop
/// compares the atomic generation with its cached copy's and takes the lock only after a swap.
final class RoutesHolder: Sendable {
    private let current: Mutex<ProxyRoutes>
    private let generationNumber: Atomic<Int>
    private let metrics: GatewayMetrics

    init(ruleSet: RuleSet, metrics: GatewayMetrics) {
        self.metrics = metrics
        self.current = Mutex(ProxyRoutes(ruleSet: ruleSet, generation: 0, metrics: metrics))
        self.generationNumber = Atomic(0)
    }

    var generation: Int {
        self.generationNumber.load(ordering: .acquiring)
    }

    var routes: ProxyRoutes {
        self.current.withLock { $0 }
    }

    /// Installs `ruleSet` for every request that starts from now on.
    @discardableResult
    func swap(to ruleSet: RuleSet) -> ProxyRoutes {
        let routes = self.current.withLock { current -> ProxyRoutes in
            current = ProxyRoutes(ruleSet: ruleSet, generation: current.generation + 1, metrics: self.metrics)
            return current
        }
        self.generationNumber.store(routes.generation, ordering: .releasing)
        return routes
    }
}

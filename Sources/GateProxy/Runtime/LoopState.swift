import CoreMetrics
import GateCore
import GateRedis
import GateRules
import NIOCore

/// What one event loop keeps for itself: its cached routes, a smooth weighted round-robin per
/// upstream, its upstream connection pool and its request-id sequence.
///
/// Only its own event loop touches it, so the hot path takes no lock: the shared routes and
/// health are looked at again only when their generation numbers moved, or while a backend
/// ramps up (every `rampRefresh`).
final class LoopState {
    /// How often weights are recomputed while a slow start is under way.
    static let rampRefresh = Duration.milliseconds(100)

    private struct Balancer {
        var upstream: Upstream
        var roundRobin: SmoothWeightedRoundRobin
        var weights: [Int]
        var healthGeneration: Int
        var recomputeAt: MonotonicInstant?
    }

    let pool: UpstreamPool
    /// This loop's admission control (its share of each upstream's limits).
    let admission: LoopAdmission
    private let routesHolder: RoutesHolder
    private let health: HealthBoard
    private var cachedRoutes: ProxyRoutes
    private var balancers: [String: Balancer] = [:]
    /// Backends this loop last saw fail: the only ones whose successes are reported.
    private var failing: Set<BackendKey> = []
    /// Requests this loop has under way per backend (for the backends' `max_in_flight`).
    private var backendInFlight: [BackendKey: Int] = [:]
    /// Each backend's answer-time histogram, made once.
    private var responseTimers: [BackendKey: CoreMetrics.Timer] = [:]
    private let requestPrefix: String
    private var requestCounter: UInt64 = 0

    init(pool: UpstreamPool, admission: LoopAdmission, routes: RoutesHolder, health: HealthBoard, requestPrefix: String) {
        self.pool = pool
        self.admission = admission
        self.routesHolder = routes
        self.health = health
        self.cachedRoutes = routes.routes
        self.requestPrefix = requestPrefix
    }

    /// The routes for a request starting now.
    var routes: ProxyRoutes {
        if self.routesHolder.generation != self.cachedRoutes.generation {
            self.cachedRoutes = self.routesHolder.routes
            self.balancers = [:]
        }
        return self.cachedRoutes
    }

    /// Buffers for serialised heads, lent to one head at a time: a head written and flushed
    /// hands its buffer back, so the next head reuses its memory instead of allocating. A buffer
    /// still held by a pending write is not unique, and the next borrower's first write copies it
    /// (copy-on-write): correct, only slower.
    private var spareBuffers: [ByteBuffer] = []
    /// Spare buffers larger than this are dropped (a huge head does not pin its memory).
    private static let largestSpare = 16 * 1024

    /// An empty buffer with room for `capacity` bytes, a spare one when there is one.
    func borrowBuffer(capacity: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard var buffer = self.spareBuffers.popLast() else {
            return allocator.buffer(capacity: capacity)
        }
        buffer.clear(minimumCapacity: capacity)
        return buffer
    }

    /// Takes a buffer back once its bytes are written (the caller keeps no copy).
    func returnBuffer(_ buffer: ByteBuffer) {
        if buffer.capacity <= Self.largestSpare && self.spareBuffers.count < 4 {
            self.spareBuffers.append(buffer)
        }
    }

    /// Writes a new request id into `buffer` (no string made): this loop's random prefix and a
    /// counter in hex.
    func writeNextRequestID(into buffer: inout ByteBuffer) {
        self.requestCounter &+= 1
        let counter = self.requestCounter
        buffer.writeString(self.requestPrefix)
        // Hex digits, most significant first, no leading zeros.
        var shift: UInt64 = 60
        while shift > 0 && counter >> shift == 0 {
            shift -= 4
        }
        while true {
            let nibble = UInt8(truncatingIfNeeded: (counter >> shift) & 0xF)
            buffer.writeInteger(nibble < 10 ? nibble + 0x30 : nibble + 0x57)
            if shift == 0 {
                break
            }
            shift -= 4
        }
    }

    /// Brings the balancer of `upstream` up to date with health (and the admission limit with
    /// the capacity of the backends that take traffic).
    /// Returns where the balancer is (one hash of the name per call: the callers work on it
    /// in place through the index).
    @discardableResult
    private func refreshBalancer(_ upstream: Upstream) -> Dictionary<String, Balancer>.Index {
        var index = self.balancers.index(forKey: upstream.name)
        if index == nil {
            self.balancers[upstream.name] = Balancer(
                upstream: upstream,
                roundRobin: SmoothWeightedRoundRobin(count: upstream.backends.count),
                weights: [],
                healthGeneration: -1,
                recomputeAt: nil
            )
            index = self.balancers.index(forKey: upstream.name)
        }
        let position = index!
        let generation = self.health.generation
        // Fields read one by one: a copy of the whole balancer would retain its arrays.
        let seen = self.balancers.values[position].healthGeneration
        let recomputeAt = self.balancers.values[position].recomputeAt
        guard seen != generation || recomputeAt != nil else {
            return position
        }
        let now = MonotonicInstant.now()
        guard seen != generation || recomputeAt.map({ now >= $0 }) == true else {
            return position
        }
        let (weights, rampUntil) = self.health.weights(for: upstream, at: now)
        self.balancers.values[position].weights = weights
        self.balancers.values[position].healthGeneration = generation
        self.balancers.values[position].recomputeAt = rampUntil.map { _ in now + Self.rampRefresh }
        var capacity: Int? = 0
        for (backend, weight) in zip(upstream.backends, weights) where weight > 0 {
            guard let cap = backend.maximumInFlight, let sum = capacity else {
                capacity = nil
                break
            }
            capacity = sum + self.admission.share(of: cap)
        }
        self.admission.setBackendCapacity(capacity.map { max(1, $0) }, upstream: upstream.name)
        return position
    }

    /// How many of `upstream`'s backends take traffic now (as this loop balances).
    func servingBackends(of upstream: Upstream) -> Int {
        let position = self.refreshBalancer(upstream)
        return self.balancers.values[position].weights.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
    }

    /// Admits a request for `upstream` (see `LoopAdmission.arrive`).
    func admit(_ upstream: Upstream, priority: AdmissionPriority, now: MonotonicInstant) -> LoopAdmission.Arrival {
        self.refreshBalancer(upstream)
        return self.admission.arrive(upstream: upstream.name, priority: priority, now: now)
    }

    /// Picks a backend of `upstream` by smooth weighted round-robin over the weights health
    /// allows now, leaving out `excluded` (backends this request already failed to reach) and
    /// backends at their `max_in_flight`. The pick is counted as under way until `ended(_:)`.
    func pick(_ upstream: Upstream, excluding excluded: [Endpoint] = []) -> Backend? {
        let position = self.refreshBalancer(upstream)
        // Updated in place: a copy out of the dictionary would copy its arrays on every pick.
        guard let index = self.pick(in: &self.balancers.values[position], upstream: upstream, excluding: excluded) else {
            return nil
        }
        let backend = upstream.backends[index]
        if backend.maximumInFlight != nil {
            self.backendInFlight[BackendKey(upstream: upstream.name, endpoint: backend.endpoint), default: 0] += 1
        }
        return backend
    }

    private func pick(in balancer: inout Balancer, upstream: Upstream, excluding excluded: [Endpoint]) -> Int? {
        let capped = upstream.backends.contains { $0.maximumInFlight != nil }
        guard !excluded.isEmpty || capped else {
            return balancer.roundRobin.pick(weights: balancer.weights)
        }
        var weights = balancer.weights
        for (position, backend) in upstream.backends.enumerated() {
            if excluded.contains(backend.endpoint) {
                weights[position] = 0
            } else if let cap = backend.maximumInFlight,
                      self.backendInFlight[BackendKey(upstream: upstream.name, endpoint: backend.endpoint), default: 0] >= self.admission.share(of: cap) {
                weights[position] = 0
            }
        }
        return balancer.roundRobin.pick(weights: weights)
    }

    /// A request sent to `key` by `pick` is over (answered, failed, or its client left).
    func ended(_ key: BackendKey, capped: Bool) {
        guard capped, let count = self.backendInFlight[key] else {
            return
        }
        self.backendInFlight[key] = count > 1 ? count - 1 : nil
    }

    /// Records `backend`'s answer time.
    func recordResponseTime(_ duration: Duration, backend: BackendKey, metrics: GatewayMetrics) {
        let timer: CoreMetrics.Timer
        if let made = self.responseTimers[backend] {
            timer = made
        } else {
            timer = metrics.upstreamResponseTimer(backend)
            self.responseTimers[backend] = timer
        }
        timer.recordNanoseconds(duration.nanosecondsClamped)
    }

    /// Reports how a forwarded request ended (failures always; a success only after a failure).
    func recordOutcome(_ key: BackendKey, failed: Bool) -> BackendHealth.Transition? {
        if failed {
            self.failing.insert(key)
        } else if self.failing.isEmpty || self.failing.remove(key) == nil {
            return nil
        }
        return self.health.recordRequest(key, failed: failed, at: .now())
    }
}

@available(*, unavailable)
extension LoopState: Sendable {}

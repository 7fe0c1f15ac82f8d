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
    private let routesHolder: RoutesHolder
    private let health: HealthBoard
    private var cachedRoutes: ProxyRoutes
    private var balancers: [String: Balancer] = [:]
    /// Backends this loop last saw fail: the only ones whose successes are reported.
    private var failing: Set<BackendKey> = []
    private let requestPrefix: String
    private var requestCounter: UInt64 = 0

    init(pool: UpstreamPool, routes: RoutesHolder, health: HealthBoard, requestPrefix: String) {
        self.pool = pool
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

    /// Picks a backend of `upstream` by smooth weighted round-robin over the weights health
    /// allows now, leaving out `excluded` (backends this request already failed to reach).
    func pick(_ upstream: Upstream, excluding excluded: [Endpoint] = []) -> Backend? {
        if self.balancers[upstream.name] == nil {
            self.balancers[upstream.name] = Balancer(
                upstream: upstream,
                roundRobin: SmoothWeightedRoundRobin(count: upstream.backends.count),
                weights: [],
                healthGeneration: -1,
                recomputeAt: nil
            )
        }
        // Updated in place: a copy out of the dictionary would copy its arrays on every pick.
        let index = self.pick(in: &self.balancers[upstream.name]!, upstream: upstream, excluding: excluded)
        return index.map { upstream.backends[$0] }
    }

    private func pick(in balancer: inout Balancer, upstream: Upstream, excluding excluded: [Endpoint]) -> Int? {
        let generation = self.health.generation
        if balancer.healthGeneration != generation || balancer.recomputeAt != nil {
            let now = MonotonicInstant.now()
            if balancer.healthGeneration != generation || balancer.recomputeAt.map({ now >= $0 }) == true {
                let (weights, rampUntil) = self.health.weights(for: upstream, at: now)
                balancer.weights = weights
                balancer.healthGeneration = generation
                balancer.recomputeAt = rampUntil.map { _ in now + Self.rampRefresh }
            }
        }
        guard !excluded.isEmpty else {
            return balancer.roundRobin.pick(weights: balancer.weights)
        }
        var weights = balancer.weights
        for (index, backend) in upstream.backends.enumerated() where excluded.contains(backend.endpoint) {
            weights[index] = 0
        }
        return balancer.roundRobin.pick(weights: weights)
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

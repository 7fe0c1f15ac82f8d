import GateCore
import GateRules
import Synchronization

/// A backend as one upstream sees it (the same address in two upstreams has two health
/// records: their checks and limits may differ).
struct BackendKey: Sendable, Hashable, CustomStringConvertible {
    let upstream: String
    let endpoint: Endpoint

    var description: String {
        "\(self.upstream)/\(self.endpoint)"
    }
}

/// The health of every backend, shared by all event loops: active checks, passive ejection and
/// slow start, each decided by GateCore's `BackendHealth`.
///
/// Event loops do not take the lock per request: they cache the weights and look again only
/// when `generation` moved (a backend changed phase) or a ramp is under way. A success is only
/// reported here when the loop last saw that backend fail.
final class HealthBoard: Sendable {
    /// One backend's phase, for `/rules` and the logs.
    struct Entry: Sendable {
        let key: BackendKey
        let weight: Int
        let effectiveWeight: Int
        let phase: BackendHealth.Phase
    }

    /// Weight units per configured weight unit, so slow start ramps in fine steps.
    static let scale = 100

    private let records = Mutex<[BackendKey: BackendHealth]>([:])
    /// Backends that passed an active check since they were configured (the warm-up gate
    /// counts only those: a backend is assumed up for balancing, but not proven warm).
    private let checked = Mutex<Set<BackendKey>>([])
    private let changes = Atomic<Int>(0)

    /// Bumped whenever a backend changes phase or the set of backends changes.
    var generation: Int {
        self.changes.load(ordering: .acquiring)
    }

    /// Keeps the records of backends still configured (a changed health configuration starts
    /// afresh), adds new ones as serving, drops removed ones.
    func sync(upstreams: [Upstream]) {
        self.records.withLock { records in
            var kept: [BackendKey: BackendHealth] = [:]
            for upstream in upstreams {
                for backend in upstream.backends {
                    let key = BackendKey(upstream: upstream.name, endpoint: backend.endpoint)
                    if let record = records[key], record.configuration == upstream.health {
                        kept[key] = record
                    } else {
                        kept[key] = BackendHealth(configuration: upstream.health)
                    }
                }
            }
            records = kept
        }
        self.checked.withLock { checked in
            checked = checked.filter { key in
                upstreams.contains { $0.name == key.upstream && $0.backends.contains { $0.endpoint == key.endpoint } }
            }
        }
        self.changes.add(1, ordering: .releasing)
    }

    /// The balancing weights of `upstream`'s backends at `now` (scaled by `scale`) and the end
    /// of the earliest ramp under way.
    func weights(for upstream: Upstream, at now: MonotonicInstant) -> (weights: [Int], rampUntil: MonotonicInstant?) {
        self.records.withLock { records in
            var rampUntil: MonotonicInstant?
            let weights = upstream.backends.map { backend -> Int in
                guard let record = records[BackendKey(upstream: upstream.name, endpoint: backend.endpoint)] else {
                    return backend.weight * Self.scale
                }
                if case .serving(let until?) = record.phase(at: now) {
                    rampUntil = min(rampUntil ?? until, until)
                }
                return record.effectiveWeight(backend.weight, scale: Self.scale, at: now)
            }
            return (weights, rampUntil)
        }
    }

    /// Records an active check; returns what changed.
    func recordCheck(_ key: BackendKey, passed: Bool, at now: MonotonicInstant) -> BackendHealth.Transition? {
        if passed {
            self.checked.withLock { _ = $0.insert(key) }
        }
        return self.record(key) { $0.recordCheck(passed: passed, at: now) }
    }

    /// Backends of `upstreams` that take traffic at `now`.
    func serving(in upstreams: [Upstream], at now: MonotonicInstant) -> Int {
        self.entries(for: upstreams, at: now).filter { $0.effectiveWeight > 0 }.count
    }

    /// Backends of `upstreams` that passed a check and take traffic at `now`.
    func provenHealthy(in upstreams: [Upstream], at now: MonotonicInstant) -> Int {
        let checked = self.checked.withLock { $0 }
        return self.entries(for: upstreams, at: now).filter { checked.contains($0.key) && $0.effectiveWeight > 0 }.count
    }

    /// Records how a forwarded request ended; returns what changed.
    ///
    /// Passive ejection routes around one bad backend; when most of an upstream's backends fail
    /// alike the cause is shared (their Redis failing over, say) and ejecting them all would
    /// only stretch the outage. So a failed request ejects its backend only while at least half
    /// of the upstream's backends (rounded up) would still serve, or none is out yet (as
    /// Envoy's `max_ejection_percent`, here 50%, with its "at least one"): the rest stay in the
    /// rotation and sell as soon as the shared cause is gone; active checks still take dead
    /// ones out.
    func recordRequest(_ key: BackendKey, failed: Bool, at now: MonotonicInstant) -> BackendHealth.Transition? {
        guard failed else {
            return self.record(key) { $0.recordRequest(failed: false, at: now) }
        }
        let transition = self.records.withLock { records -> BackendHealth.Transition? in
            guard var record = records[key] else {
                return nil
            }
            var siblings = 0
            var serving = 0
            for (other, health) in records where other.upstream == key.upstream {
                siblings += 1
                if case .serving = health.phase(at: now) {
                    serving += 1
                }
            }
            // After this ejection at least half (rounded up) still serve — or none was out yet
            // (Envoy's "at least one"): of 4 backends at most 2 are out, of 2 or 3 one; a lone
            // dead backend is still ejected. Down by its checks counts as out.
            let mayEject = serving == siblings || (serving - 1) * 2 >= siblings
            let transition = record.recordRequest(failed: true, at: now, mayEject: mayEject)
            records[key] = record
            return transition
        }
        if transition != nil {
            self.changes.add(1, ordering: .releasing)
        }
        return transition
    }

    private func record(_ key: BackendKey, _ update: (inout BackendHealth) -> BackendHealth.Transition?) -> BackendHealth.Transition? {
        let transition = self.records.withLock { records -> BackendHealth.Transition? in
            guard var record = records[key] else {
                return nil
            }
            let transition = update(&record)
            records[key] = record
            return transition
        }
        if transition != nil {
            self.changes.add(1, ordering: .releasing)
        }
        return transition
    }

    /// Every backend of `upstreams` with its weights and phase at `now`.
    func entries(for upstreams: [Upstream], at now: MonotonicInstant) -> [Entry] {
        self.records.withLock { records in
            upstreams.flatMap { upstream in
                upstream.backends.map { backend in
                    let key = BackendKey(upstream: upstream.name, endpoint: backend.endpoint)
                    let record = records[key] ?? BackendHealth(configuration: upstream.health)
                    return Entry(
                        key: key,
                        weight: backend.weight,
                        effectiveWeight: record.effectiveWeight(backend.weight, scale: Self.scale, at: now),
                        phase: record.phase(at: now)
                    )
                }
            }
        }
    }
}

import GateCore
import Synchronization

/// The gateway's warm-up gate (GateCore's `WarmupGate`) shared by every event loop: updated
/// with what is known about Redis, the scripts, the rules and the backends every
/// `updateInterval`, read per request. Once `ready`, a request reads one atomic.
final class WarmupController: Sendable {
    static let updateInterval = Duration.milliseconds(100)

    private struct State {
        var gate: WarmupGate
        var waitingFor: String?
    }

    private let state: Mutex<State>
    private let isReady = Atomic(false)

    init(configuration: WarmupGate.Configuration) {
        self.state = Mutex(State(gate: WarmupGate(configuration), waitingFor: "waiting for the first checks"))
    }

    /// Moves the gate on with `conditions` at `now`; returns the phase and, when the gate holds
    /// traffic back, why.
    @discardableResult
    func update(_ conditions: WarmupGate.Conditions, now: MonotonicInstant) -> (phase: WarmupGate.Phase, waitingFor: String?) {
        let result = self.state.withLock { state -> (WarmupGate.Phase, String?) in
            let phase = state.gate.update(conditions, now: now)
            state.waitingFor = phase == .warming || phase == .starting ? state.gate.waitingFor(conditions) ?? "waiting for a dependency" : nil
            return (phase, state.waitingFor)
        }
        self.isReady.store(result.0 == .ready, ordering: .relaxed)
        return result
    }

    /// Whether a public request with uniform random `draw` in [0, 1) goes on at `now`.
    func admits(draw: @autoclosure () -> Double, now: @autoclosure () -> MonotonicInstant) -> Bool {
        if self.isReady.load(ordering: .relaxed) {
            return true
        }
        let at = now()
        let share = self.state.withLock { $0.gate.share(now: at) }
        return share >= 1 || (share > 0 && draw() < share)
    }

    /// The phase now, the share admitted, and why traffic is held back (if it is).
    func status(now: MonotonicInstant) -> (phase: WarmupGate.Phase, share: Double, waitingFor: String?) {
        self.state.withLock { ($0.gate.phase, $0.gate.share(now: now), $0.waitingFor) }
    }

    /// Shutting down: nothing new goes on.
    func drain() {
        self.state.withLock { state in
            state.gate.drain()
            state.waitingFor = "draining"
        }
        self.isReady.store(false, ordering: .relaxed)
    }
}

import CoreMetrics
import GateCore
import GateRedis
import Logging
import NIOCore
import Synchronization

/// The per-address and total connection caps at accept time (GateCore's `ConnectionCounter`
/// under a lock: taken once per connection, never per request).
final class ConnectionAdmission: Sendable {
    private let counter: Mutex<ConnectionCounter>
    private let refusals = Mutex(EventThrottle(interval: .seconds(1)))
    private let metrics: GatewayMetrics
    private let logger: Logger

    init(counter: ConnectionCounter, metrics: GatewayMetrics, logger: Logger) {
        self.counter = Mutex(counter)
        self.metrics = metrics
        self.logger = logger
    }

    /// Admits `channel` as a connection of `address` (released when it closes), or refuses.
    func admit(_ address: IPAddress, channel: any Channel) -> Bool {
        if let refusal = self.counter.withLock({ $0.open(address) }) {
            self.metrics.connectionsRefused.increment()
            let held = self.refusals.withLock { $0.admit(at: .now()) }
            if let held {
                self.logger.warning("connection refused", metadata: ["client": "\(address)", "reason": "\(refusal)", "similar_held_back": "\(held)"])
            }
            return false
        }
        self.metrics.connectionsOpen.increment()
        channel.closeFuture.whenComplete { _ in
            self.counter.withLock { $0.close(address) }
            self.metrics.connectionsOpen.decrement()
        }
        return true
    }
}

import GateCore

/// A named group of backends that routes send requests to, balanced by smooth weighted
/// round-robin.
public struct Upstream: Sendable, Hashable {
    /// The name routes refer to it by: letters, digits, `-`, `_`, `.`.
    public var name: String
    /// Its backends, in file order; never empty, no address twice.
    public var backends: [Backend]
    /// How backends are checked.
    public var healthCheck: HealthCheck
    /// When a backend goes down, is ejected and comes back: `rise` and `fall` for the active
    /// checks, `ejectAfter`, `ejection` and `maximumEjection` for passive ejection, `slowStart`.
    public var health: BackendHealth.Configuration

    /// An upstream; checks and health thresholds default as in a rule file that leaves them out.
    public init(
        name: String,
        backends: [Backend],
        healthCheck: HealthCheck = HealthCheck(),
        health: BackendHealth.Configuration = BackendHealth.Configuration()
    ) {
        self.name = name
        self.backends = backends
        self.healthCheck = healthCheck
        self.health = health
    }
}

import GateCore
import GateRules

/// One backend as the gateway balances it now: for `/rules`, metrics and tests.
public struct BackendStatus: Sendable, Hashable {
    public let upstream: String
    public let endpoint: Endpoint
    /// The configured weight.
    public let weight: Int
    /// The weight balanced with now, in hundredths of a configured unit (0: takes no traffic;
    /// between 1 and `weight × 100` while slow start ramps it up).
    public let effectiveWeight: Int
    /// `serving`, `down` or `ejected`.
    public let phase: String
    /// The end of the slow start under way, if any.
    public let rampUntil: MonotonicInstant?
    /// The end of the ejection under way, if any.
    public let ejectedUntil: MonotonicInstant?
}

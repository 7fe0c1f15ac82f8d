/// The version of SpikeGate this build is, as printed by `spikegate --version`.
public enum SpikeGateVersion {
    /// Semantic version of the release.
    public static let current = "0.1.0"
}

/// Where a TLS listener's certificate and private key come from.
public enum TLSSource: Sendable, Hashable {
    /// PEM files: the certificate chain (leaf first) and its private key. Paths are resolved
    /// against the configuration file's directory; whether the files exist and match is checked
    /// when the listener loads them.
    case files(certificate: String, key: String)
    /// A certificate made at startup for the demo; browsers will not trust it.
    case selfSigned
}

import GateRules
import NIOSSL

/// The TLS settings of every gateway listener: TLS 1.2 at least, forward-secret AEAD cipher
/// suites only, ALPN `http/1.1`.
///
/// TLS 1.3's suites are all ephemeral-key AEAD; for TLS 1.2 the list below allows only ECDHE
/// with AES-GCM or ChaCha20-Poly1305 (no CBC, no RSA key exchange, no SHA-1 MACs), as
/// Mozilla's "intermediate" profile does.
enum ServerTLS {
    static let tls12CipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// A server context for `chain` and `key`.
    static func context(chain: [NIOSSLCertificate], key: NIOSSLPrivateKey) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuites = Self.tls12CipherSuites
        configuration.applicationProtocols = ["http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }
}

import GateRules
import Logging
import NIOSSL
import Synchronization

/// The TLS context of one listener, rebuilt when its certificate or key file changes, so a
/// renewed certificate is served without a restart.
///
/// New connections take the current context; connections already open keep theirs. A file
/// that cannot be read or does not match its key leaves the old context in place (and says
/// so in the log): a half-written renewal never takes the listener down.
final class CertificateStore: Sendable {
    /// Why a certificate could not be loaded.
    struct LoadError: Error, CustomStringConvertible {
        let path: String
        let problem: String

        var description: String {
            "TLS certificate or key \(self.path): \(self.problem)"
        }
    }

    private let source: TLSSource
    private let current: Mutex<(context: NIOSSLContext, fingerprint: [String])>
    private let logger: Logger

    /// Loads `source` now; throws when it cannot be loaded.
    init(source: TLSSource, logger: Logger) throws {
        self.source = source
        self.logger = logger
        let (context, fingerprint) = try Self.load(source)
        self.current = Mutex((context, fingerprint))
    }

    /// The context for a connection accepted now.
    var context: NIOSSLContext {
        self.current.withLock { $0.context }
    }

    /// Reloads when the files changed since the last load. Returns `true` when a new context
    /// is in place.
    @discardableResult
    func reloadIfChanged() -> Bool {
        guard case .files = self.source else {
            return false
        }
        let fingerprint = Self.fingerprint(self.source)
        guard fingerprint != self.current.withLock({ $0.fingerprint }) else {
            return false
        }
        do {
            let (context, loaded) = try Self.load(self.source)
            self.current.withLock { $0 = (context, loaded) }
            self.logger.info("TLS certificate reloaded", metadata: ["files": "\(fingerprint.joined(separator: ", "))"])
            return true
        } catch {
            // Remember the failed files so the error is logged once per change, not per look.
            self.current.withLock { $0.fingerprint = fingerprint }
            self.logger.error("TLS certificate not reloaded; the previous one stays in use", metadata: ["error": "\(error)"])
            return false
        }
    }

    private static func load(_ source: TLSSource) throws -> (NIOSSLContext, [String]) {
        switch source {
        case .selfSigned:
            let generated = try SelfSignedCertificate.generate()
            let chain = try NIOSSLCertificate.fromPEMBytes(Array(generated.certificatePEM.utf8))
            let key = try NIOSSLPrivateKey(bytes: Array(generated.privateKeyPEM.utf8), format: .pem)
            return (try ServerTLS.context(chain: chain, key: key), [])
        case .files(let certificatePath, let keyPath):
            let fingerprint = Self.fingerprint(source)
            let chain: [NIOSSLCertificate]
            do {
                chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
            } catch {
                throw LoadError(path: certificatePath, problem: "cannot read a PEM certificate chain (\(error))")
            }
            guard !chain.isEmpty else {
                throw LoadError(path: certificatePath, problem: "no certificate in the file")
            }
            let key: NIOSSLPrivateKey
            do {
                key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
            } catch {
                throw LoadError(path: keyPath, problem: "cannot read a PEM private key (\(error))")
            }
            do {
                return (try ServerTLS.context(chain: chain, key: key), fingerprint)
            } catch {
                throw LoadError(path: certificatePath, problem: "the certificate and the key \(keyPath) do not make a TLS context (\(error))")
            }
        }
    }

    /// Sizes and modification times of the certificate and key files.
    private static func fingerprint(_ source: TLSSource) -> [String] {
        guard case .files(let certificate, let key) = source else {
            return []
        }
        return [FileStamp.of(certificate), FileStamp.of(key)]
    }
}

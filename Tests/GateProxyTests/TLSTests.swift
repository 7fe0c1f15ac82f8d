import Foundation
import GateProxy
import GateRules
import GateTestSupport
import NIOCore
import Testing

/// TLS on a listener, checked with real clients (OpenSSL's `s_client`, curl).
@Suite struct TLSTests {
    static func withTLS(_ tls: TLSSource, _ body: (GatewayHarness) async throws -> Void) async throws {
        try await GatewayHarness.with(weights: [1], configure: { configuration in
            configuration.listeners = [Listener(endpoint: Endpoint(host: "127.0.0.1", port: 0), tls: tls)]
        }, body)
    }

    /// `openssl s_client` against the gateway with `options`; its output and exit status.
    static func handshake(port: Int, _ options: [String]) async throws -> (ok: Bool, text: String) {
        let output = try await runProgram("openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost"] + options, timeout: .seconds(20))
        return (output.status == 0, output.standardOutput + output.standardError)
    }

    @Test func curlGetsAnAnswerOverTLSAndTheBackendSeesHTTPS() async throws {
        try await Self.withTLS(.selfSigned) { harness in
            let output = try await runProgram("curl", ["-sk", "--http1.1", "-i", "https://127.0.0.1:\(harness.port)/x"], timeout: .seconds(20))
            #expect(output.status == 0, "\(output.standardError)")
            #expect(output.standardOutput.hasPrefix("HTTP/1.1 200"))
            #expect(output.standardOutput.contains("X-Seen-X-Forwarded-Proto: https"))
            #expect(output.standardOutput.hasSuffix("b1"))
        }
    }

    @Test func tls12And13WithALPNAreAcceptedOlderVersionsAndWeakSuitesRefused() async throws {
        try await Self.withTLS(.selfSigned) { harness in
            let tls13 = try await Self.handshake(port: harness.port, ["-tls1_3", "-alpn", "http/1.1"])
            #expect(tls13.ok && tls13.text.contains("TLSv1.3"), "\(tls13.text)")
            #expect(tls13.text.contains("ALPN protocol: http/1.1"))
            let tls12 = try await Self.handshake(port: harness.port, ["-tls1_2", "-alpn", "h2,http/1.1"])
            #expect(tls12.ok && tls12.text.contains("TLSv1.2"), "\(tls12.text)")
            #expect(tls12.text.contains("ALPN protocol: http/1.1"))
            // Forward-secret AEAD only: a CBC suite is refused even with ECDHE.
            let cbc = try await Self.handshake(port: harness.port, ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"])
            #expect(!cbc.ok, "\(cbc.text)")
            // TLS 1.1 and 1.0 are refused by the server (the client is told to allow them).
            for version in ["-tls1_1", "-tls1"] {
                let old = try await Self.handshake(port: harness.port, [version, "-cipher", "DEFAULT:@SECLEVEL=0"])
                #expect(!old.ok, "\(version): \(old.text)")
                #expect(old.text.contains("alert protocol version") || old.text.contains("unsupported protocol") || old.text.contains("wrong version"), "\(version): \(old.text)")
            }
            #expect(harness.backends[0].requests == 0)
        }
    }

    @Test func aRenewedCertificateIsServedWithoutRestartAndABrokenOneIgnored() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spikegate-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificate = directory.appendingPathComponent("cert.pem")
        let key = directory.appendingPathComponent("key.pem")
        func install(_ name: String) throws {
            let generated = try SelfSignedCertificate.generate(commonName: name)
            try generated.certificatePEM.write(to: certificate, atomically: true, encoding: .utf8)
            try generated.privateKeyPEM.write(to: key, atomically: true, encoding: .utf8)
        }
        try install("first-certificate")
        try await Self.withTLS(.files(certificate: certificate.path, key: key.path)) { harness in
            let first = try await Self.handshake(port: harness.port, ["-tls1_2"])
            #expect(first.text.contains("first-certificate"), "\(first.text)")
            try install("second-certificate")
            #expect(harness.gateway.reloadCertificates() == 1)
            let second = try await Self.handshake(port: harness.port, ["-tls1_2"])
            #expect(second.text.contains("second-certificate"), "\(second.text)")
            // A half-written renewal is refused; the last good certificate stays.
            try "-----BEGIN CERTIFICATE-----\nnot base64\n".write(to: certificate, atomically: true, encoding: .utf8)
            #expect(harness.gateway.reloadCertificates() == 0)
            let kept = try await Self.handshake(port: harness.port, ["-tls1_2"])
            #expect(kept.ok && kept.text.contains("second-certificate"), "\(kept.text)")
            // And the watch picks up a good one by itself.
            try install("third-certificate")
            let watched = try await eventually(attempts: 100, every: .milliseconds(100)) {
                try await Self.handshake(port: harness.port, ["-tls1_2"]).text.contains("third-certificate")
            }
            #expect(watched)
        }
    }

    @Test func aMissingCertificateFileStopsTheStartNamingIt() async throws {
        await #expect {
            try await Self.withTLS(.files(certificate: "/nonexistent/cert.pem", key: "/nonexistent/key.pem")) { _ in }
        } throws: { error in
            "\(error)".contains("/nonexistent/cert.pem")
        }
    }
}

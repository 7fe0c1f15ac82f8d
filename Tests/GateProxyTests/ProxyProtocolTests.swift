import GateProxy
import GateRules
import GateTestSupport
import NIOCore
import Testing

/// The PROXY protocol on a `proxy_protocol: true` listener, from a trusted proxy (127.0.0.1)
/// and from an untrusted address (127.0.0.2).
@Suite struct ProxyProtocolTests {
    static let request = Array("GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".utf8)
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// A v2 header: `command` 0x20 LOCAL / 0x21 PROXY, TCP over IPv4, with `tlvs` appended.
    static func v2(command: UInt8 = 0x21, source: [UInt8] = [192, 0, 2, 7], tlvs: [UInt8] = [], version: UInt8 = 0x20) -> [UInt8] {
        let payload: [UInt8] = source + [10, 0, 0, 1] + [0x15, 0xB3] + [0x00, 0x50] + tlvs
        return Self.signature + [version | (command & 0x0F), 0x11, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload
    }

    static func withProxyListener(_ body: (GatewayHarness) async throws -> Void) async throws {
        try await GatewayHarness.with(weights: [1], extra: "trusted_proxies: [127.0.0.1/32]\n", configure: { configuration in
            configuration.listeners = [Listener(endpoint: Endpoint(host: "127.0.0.1", port: 0), proxyProtocol: true)]
        }, body)
    }

    struct Good: Sendable, CustomStringConvertible {
        let name: String
        let chunks: [[UInt8]]
        let client: String
        var description: String { self.name }
    }

    static let good: [Good] = [
        Good(name: "v1 TCP4", chunks: [Array("PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\n".utf8) + Self.request], client: "192.0.2.7"),
        Good(name: "v1 TCP6", chunks: [Array("PROXY TCP6 2001:db8::7 2001:db8::1 5555 80\r\n".utf8) + Self.request], client: "2001:db8::7"),
        Good(name: "v1 UNKNOWN keeps the socket address", chunks: [Array("PROXY UNKNOWN\r\n".utf8) + Self.request], client: "127.0.0.1"),
        Good(name: "v1 split in three writes", chunks: [Array("PROXY TCP4 192.0.2.".utf8), Array("7 10.0.0.1 5555 80\r".utf8), Array("\n".utf8) + Self.request], client: "192.0.2.7"),
        Good(name: "v2 PROXY", chunks: [Self.v2() + Self.request], client: "192.0.2.7"),
        Good(name: "v2 with TLVs skipped", chunks: [Self.v2(tlvs: [0x01, 0x00, 0x02, 0x68, 0x32, 0x04, 0x00, 0x01, 0x00]) + Self.request], client: "192.0.2.7"),
        Good(name: "v2 LOCAL keeps the socket address", chunks: [Self.v2(command: 0x20) + Self.request], client: "127.0.0.1"),
        Good(name: "v2 split after the signature", chunks: [Array(Self.v2().prefix(13)), Array(Self.v2().dropFirst(13)) + Self.request], client: "192.0.2.7"),
    ]

    @Test(arguments: Self.good)
    func aTrustedProxysHeaderNamesTheClient(_ example: Good) async throws {
        try await Self.withProxyListener { harness in
            let result = try await harness.raw(example.chunks, pause: .milliseconds(50))
            #expect(result.status == 200, "\(result.text.prefix(100))")
            #expect(result.text.contains("X-Seen-X-Forwarded-For: \(example.client)\r\n"))
        }
    }

    struct Bad: Sendable, CustomStringConvertible {
        let name: String
        let bytes: [UInt8]
        var description: String { self.name }
    }

    static let bad: [Bad] = [
        Bad(name: "plain HTTP without a header", bytes: Self.request),
        Bad(name: "v1 unknown protocol", bytes: Array("PROXY UDP4 192.0.2.7 10.0.0.1 5555 80\r\n".utf8) + Self.request),
        Bad(name: "v1 bad address", bytes: Array("PROXY TCP4 192.0.2.300 10.0.0.1 5555 80\r\n".utf8) + Self.request),
        Bad(name: "v1 family mismatch", bytes: Array("PROXY TCP4 2001:db8::7 10.0.0.1 5555 80\r\n".utf8) + Self.request),
        Bad(name: "v1 port out of range", bytes: Array("PROXY TCP4 192.0.2.7 10.0.0.1 65536 80\r\n".utf8) + Self.request),
        Bad(name: "v1 bare LF", bytes: Array("PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\n".utf8) + Self.request),
        Bad(name: "v1 line too long", bytes: Array(("PROXY TCP4 " + String(repeating: "1", count: 120) + "\r\n").utf8)),
        Bad(name: "v2 wrong version", bytes: Self.v2(version: 0x30) + Self.request),
        Bad(name: "v2 unknown command", bytes: Self.v2(command: 0x2F) + Self.request),
        Bad(name: "v2 damaged signature", bytes: [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x55, 0x0A] + Array(Self.v2().dropFirst(12))),
    ]

    @Test(arguments: Self.bad)
    func anInvalidHeaderDropsTheConnectionUnanswered(_ example: Bad) async throws {
        try await Self.withProxyListener { harness in
            let result = try await harness.raw([example.bytes])
            #expect(result.closedByServer)
            #expect(result.bytes.isEmpty, "\(result.text.prefix(100))")
            #expect(harness.proxiedBytes == 0)
        }
    }

    @Test func anUntrustedPeerIsNotBelievedAndNeedsNoHeader() async throws {
        try await Self.withProxyListener { harness in
            // Its PROXY line is just a malformed request.
            let forged = try await harness.raw([Array("PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\n".utf8) + Self.request], from: "127.0.0.2")
            #expect(forged.status == 400)
            #expect(harness.proxiedBytes == 0)
            // Plain HTTP from it is served under its socket address.
            let plain = try await harness.raw([Self.request], from: "127.0.0.2")
            #expect(plain.status == 200)
            #expect(plain.text.contains("X-Seen-X-Forwarded-For: 127.0.0.2\r\n"))
        }
    }
}

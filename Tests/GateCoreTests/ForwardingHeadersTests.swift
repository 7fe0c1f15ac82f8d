import GateCore
import Testing

@Suite("Forwarding headers")
struct ForwardingHeadersTests {
    private let peer = "198.51.100.9"

    private func upstream(_ fields: [(String, String)], trusted: Bool) -> [String: [String]] {
        let result = ForwardingHeaders.upstreamRequest(
            fields.map { (name: $0.0, value: $0.1) }, peer: self.peer, peerTrusted: trusted, scheme: "https", newID: "gen-1"
        )
        return Dictionary(grouping: result, by: { $0.name.lowercased() }).mapValues { $0.map(\.value) }
    }

    @Test("an untrusted peer's forwarding fields are replaced, never believed")
    func untrustedPeer() {
        let fields = self.upstream([
            ("Host", "tickets"), ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "http"), ("X-Request-Id", "client-id"),
        ], trusted: false)
        #expect(fields["x-forwarded-for"] == ["198.51.100.9"])
        #expect(fields["x-forwarded-proto"] == ["https"])
        #expect(fields["x-request-id"] == ["gen-1"])
        #expect(fields["host"] == ["tickets"])
    }

    @Test("a trusted peer's list gets the peer appended; its proto and valid request id are kept")
    func trustedPeer() {
        let fields = self.upstream([
            ("X-Forwarded-For", "203.0.113.1"), ("x-forwarded-for", "10.0.0.2"), ("X-Forwarded-Proto", "http"), ("X-Request-Id", "edge-77"),
        ], trusted: true)
        #expect(fields["x-forwarded-for"] == ["203.0.113.1, 10.0.0.2, 198.51.100.9"])
        #expect(fields["x-forwarded-proto"] == ["http"])
        #expect(fields["x-request-id"] == ["edge-77"])
        let badID = self.upstream([("X-Request-Id", "has space")], trusted: true)
        #expect(badID["x-request-id"] == ["gen-1"])
    }

    @Test("hop-by-hop fields and those Connection names are dropped; Connection cannot drop protected ones")
    func hopByHop() {
        let fields = self.upstream([
            ("Host", "t"), ("Connection", "keep-alive, X-Secret, X-Forwarded-For, Content-Length, host"), ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"), ("TE", "trailers"), ("Upgrade", "websocket"), ("Proxy-Authorization", "Basic x"),
            ("X-Secret", "s"), ("Content-Length", "3"), ("Accept", "*/*"),
        ], trusted: false)
        #expect(Set(fields.keys) == ["host", "content-length", "accept", "x-forwarded-for", "x-forwarded-proto", "x-request-id"])
        #expect(fields["x-forwarded-for"] == ["198.51.100.9"])
    }
}

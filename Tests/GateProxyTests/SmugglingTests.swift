import GateTestSupport
import NIOCore
import Testing

/// Requests whose end could be read two ways (request smuggling) or that break HTTP/1.1's
/// syntax: each is answered 400 and not one byte of it reaches a backend.
@Suite struct SmugglingTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let bytes: String
        var description: String { self.name }
    }

    static let cases: [Case] = [
        Case(name: "Content-Length then Transfer-Encoding", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"),
        Case(name: "Transfer-Encoding then Content-Length", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG"),
        Case(name: "two equal Content-Lengths", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
        Case(name: "two different Content-Lengths", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello"),
        Case(name: "empty Content-Length", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: \r\n\r\nhello"),
        Case(name: "Content-Length with a sign", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: +5\r\n\r\nhello"),
        Case(name: "Transfer-Encoding ,chunked", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n"),
        Case(name: "Transfer-Encoding chunked, chunked", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
        Case(name: "two Transfer-Encoding headers", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        Case(name: "Transfer-Encoding on HTTP/1.0", bytes: "POST / HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        Case(name: "chunk size not hex", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
        Case(name: "chunk size overflowing", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n"),
        Case(name: "negative chunk size", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
        Case(name: "bare LF line endings", bytes: "GET / HTTP/1.1\nHost: gw\n\n"),
        Case(name: "bare LF after a header", bytes: "GET / HTTP/1.1\r\nHost: gw\nX-A: b\r\n\r\n"),
        Case(name: "obs-fold continuation line", bytes: "GET / HTTP/1.1\r\nHost: gw\r\nX-A: a\r\n b\r\n\r\n"),
        Case(name: "NUL in a header value", bytes: "GET / HTTP/1.1\r\nHost: gw\r\nX-A: a\u{0}b\r\n\r\n"),
        Case(name: "two Host headers", bytes: "GET / HTTP/1.1\r\nHost: gw\r\nHost: evil\r\n\r\n"),
        Case(name: "no Host on HTTP/1.1", bytes: "GET / HTTP/1.1\r\nX-A: b\r\n\r\n"),
        Case(name: "space before the colon", bytes: "GET / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
        Case(name: "a PROXY header on a plain listener", bytes: "PROXY TCP4 192.0.2.1 192.0.2.2 1111 80\r\nGET / HTTP/1.1\r\nHost: gw\r\n\r\n"),
    ]

    @Test(arguments: Self.cases)
    func isRefusedBeforeAnyByteReachesABackend(_ request: Case) async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            let result = try await harness.raw([Array(request.bytes.utf8)])
            #expect(result.status == 400, "\(request.name): \(result.text.prefix(120))")
            #expect(result.closedByServer)
            #expect(result.text.contains(#""code":-1"#))
            #expect(harness.proxiedBytes == 0)
            #expect(harness.backends[0].requests == 0)
        }
    }

    @Test func aValidRequestOnTheSameGatewayStillPasses() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            for request in Self.cases.prefix(3) {
                _ = try await harness.raw([Array(request.bytes.utf8)])
            }
            let result = try await harness.raw([Array("GET /ok HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".utf8)])
            #expect(result.status == 200)
            #expect(harness.backends[0].paths == ["/ok"])
        }
    }
}

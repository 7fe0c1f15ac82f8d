import Foundation
import GateTestSupport
import NIOCore
import Testing

/// The gateway reads HTTP/1 bytes itself: requests split anywhere across reads, several in one
/// read, `Expect: 100-continue` and empty lines between requests all come out right.
@Suite struct ByteStreamTests {
    @Test func aRequestSplitAcrossManyReadsIsForwardedWhole() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            let request = "POST /orders HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
            // Cut into pieces of 7 bytes: lines, chunk sizes and CRLFs are split mid-way.
            let bytes = Array(request.utf8)
            let pieces = stride(from: 0, to: bytes.count, by: 7).map { Array(bytes[$0..<min($0 + 7, bytes.count)]) }
            let result = try await harness.raw(pieces, pause: .milliseconds(2))
            #expect(result.status == 200, "\(result.text.prefix(200))")
            #expect(result.text.contains("X-Seen-Body-Bytes: 11"))
            #expect(harness.backends[0].paths == ["/orders"])
        }
    }

    @Test func pipelinedRequestsWithBodiesAreAnsweredInOrder() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            let requests = "POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc"
                + "\r\n"  // an empty line between requests is skipped (RFC 9112 §2.2)
                + "POST /b HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n"
                + "GET /c HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
            let result = try await harness.raw([Array(requests.utf8)])
            #expect(result.closedByServer)
            #expect(harness.backends[0].paths == ["/a", "/b", "/c"])
            let bodies = result.text.components(separatedBy: "X-Seen-Body-Bytes: ").dropFirst().map { $0.prefix(while: \.isNumber) }
            #expect(bodies == ["3", "4", "0"], "\(result.text)")
        }
    }

    @Test func expectContinueIsAnsweredByTheGatewayAndNotForwarded() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            let head = "POST /orders HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
            let result = try await harness.raw([Array(head.utf8), Array("hello".utf8)], pause: .milliseconds(50))
            #expect(result.text.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), "\(result.text.prefix(120))")
            #expect(result.text.contains("X-Seen-Body-Bytes: 5"))
        }
    }

    @Test func aHeadOverTheSizeLimitIsRefusedBeforeItEnds() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            // Never-ending header lines: refused once past the head bound, without waiting for an end.
            let start = "GET / HTTP/1.1\r\nHost: gw\r\n"
            let filler = (0..<400).map { "X-Filler-\($0): " + String(repeating: "f", count: 100) + "\r\n" }.joined()
            let result = try await harness.raw([Array((start + filler).utf8)])
            #expect(result.status == 431, "\(result.text.prefix(120))")
            #expect(result.closedByServer)
            #expect(harness.backends[0].requests == 0)
        }
    }
}

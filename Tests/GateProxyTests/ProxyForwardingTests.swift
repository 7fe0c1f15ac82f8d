import Foundation
import GateCore
import GateProxy
import GateRules
import GateTestSupport
import NIOCore
import NIOHTTP1
import Testing

@Suite struct ProxyForwardingTests {
    @Test func weightsOneToFourGiveExactSharesInterleaved() async throws {
        try await GatewayHarness.with(weights: [1, 2, 3, 4]) { harness in
            let connection = try await harness.connect()
            var order: [String] = []
            for _ in 0..<1_000 {
                let response = try await connection.request(.GET, "/buy/ticket")
                #expect(response.status == 200)
                order.append(response.body)
            }
            let counts = Dictionary(grouping: order, by: { $0 }).mapValues(\.count)
            #expect(counts == ["b1": 100, "b2": 200, "b3": 300, "b4": 400])
            // Interleaved: never four answers in a row from one backend.
            var longestRun = 1
            var run = 1
            for index in order.indices.dropFirst() {
                run = order[index] == order[index - 1] ? run + 1 : 1
                longestRun = max(longestRun, run)
            }
            #expect(longestRun < 4)
            #expect(harness.backends.map(\.requests) == [100, 200, 300, 400])
        }
    }

    @Test func forwardingHeadersAreSetAndHopByHopOnesDropped() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            let connection = try await harness.connect()
            let response = try await connection.request(.GET, "/x", headers: [
                ("X-Forwarded-For", "203.0.113.9"),
                ("X-Request-Id", "client-chosen"),
                ("Connection", "keep-alive, X-Secret"),
                ("X-Secret", "dropped"),
                ("Keep-Alive", "timeout=5"),
            ])
            #expect(response.status == 200)
            // An untrusted client's own X-Forwarded-For and request id are not believed.
            #expect(response.header("X-Seen-X-Forwarded-For") == "127.0.0.1")
            #expect(response.header("X-Seen-X-Forwarded-Proto") == "http")
            let id = try #require(response.header("X-Seen-X-Request-Id"))
            #expect(id != "client-chosen" && !id.isEmpty)
            let second = try await connection.request(.GET, "/x")
            #expect(second.header("X-Seen-X-Request-Id") != id)
        }
    }

    @Test func aTrustedProxysForwardedForIsKeptAndExtended() async throws {
        try await GatewayHarness.with(weights: [1], extra: "trusted_proxies: [127.0.0.1/32]\n") { harness in
            let trusted = try await harness.connect()
            let response = try await trusted.request(.GET, "/x", headers: [("X-Forwarded-For", "203.0.113.9"), ("X-Request-Id", "lb-1")])
            #expect(response.header("X-Seen-X-Forwarded-For") == "203.0.113.9, 127.0.0.1")
            #expect(response.header("X-Seen-X-Request-Id") == "lb-1")
            // The same header from another address is ignored.
            let untrusted = try await harness.connect(from: "127.0.0.2")
            let other = try await untrusted.request(.GET, "/x", headers: [("X-Forwarded-For", "203.0.113.9")])
            #expect(other.header("X-Seen-X-Forwarded-For") == "127.0.0.2")
        }
    }

    @Test func requestBodiesStreamThroughWithLengthOrChunked() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            let connection = try await harness.connect()
            let body = String(repeating: "a", count: 300_000)
            let response = try await connection.request(.POST, "/orders", body: body)
            #expect(response.status == 200)
            #expect(response.header("X-Seen-Body-Bytes") == "300000")
            let chunked = try await harness.raw([Array((
                "POST /orders HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            ).utf8)])
            #expect(chunked.status == 200)
            #expect(chunked.text.contains("X-Seen-Body-Bytes: 11"))
        }
    }

    @Test func aLargeResponseArrivesWhole() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            let connection = try await harness.connect()
            let response = try await connection.request(.GET, "/big/5000000")
            #expect(response.status == 200)
            #expect(response.body.utf8.count == 5_000_000)
            let after = try await connection.request(.GET, "/x")
            #expect(after.body == "b1")
        }
    }

    @Test func aChunkedAnswerIsChunkedAgainAndTheConnectionKept() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            let requests = "GET /chunked/70000 HTTP/1.1\r\nHost: gw\r\n\r\nGET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
            let result = try await harness.raw([Array(requests.utf8)])
            let text = result.text
            #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            let head = text.components(separatedBy: "\r\n\r\n")[0].lowercased()
            #expect(head.contains("transfer-encoding: chunked"))
            #expect(!head.contains("content-length"))
            // The data arrives whole (70,000 x) and the second answer follows on the same connection.
            #expect(text.filter { $0 == "x" }.count == 70_000)
            #expect(text.hasSuffix("b1"))
            #expect(harness.backends[0].paths == ["/chunked/70000", "/x"])
        }
    }

    @Test func anHTTP10ClientGetsAChunkedAnswerDelimitedByTheClose() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            let result = try await harness.raw([Array("GET /chunked/5000 HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\n\r\n".utf8)])
            #expect(result.text.hasPrefix("HTTP/1.0 200 OK\r\n"))
            let parts = result.text.components(separatedBy: "\r\n\r\n")
            #expect(parts[0].lowercased().contains("connection: close"))
            #expect(!parts[0].lowercased().contains("transfer-encoding"))
            #expect(parts.dropFirst().joined() == String(repeating: "x", count: 5000))
            #expect(result.closedByServer)
        }
    }

    @Test func anAnswerDelimitedByTheBackendsCloseReachesTheClientChunked() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            let connection = try await harness.connect()
            let response = try await connection.request(.GET, "/close/40000")
            #expect(response.status == 200)
            #expect(response.body == String(repeating: "x", count: 40000))
            // The client connection stays usable (the upstream one was closed, not reused).
            let after = try await connection.request(.GET, "/x")
            #expect(after.body == "b1")
        }
    }

    @Test func aHeadAnswerKeepsItsLengthAndHasNoBody() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            let requests = "HEAD /x HTTP/1.1\r\nHost: gw\r\n\r\nGET /y HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
            let result = try await harness.raw([Array(requests.utf8)])
            let answers = result.text.components(separatedBy: "HTTP/1.1 200 OK\r\n")
            #expect(answers.count == 3, "\(result.text)")
            #expect(answers[1].lowercased().contains("content-length: 2\r\n"))
            #expect(answers[1].hasSuffix("\r\n\r\n"))
            #expect(answers[2].hasSuffix("b1"))
        }
    }

    @Test func anUnroutedPathIsAnswered404WithAReason() async throws {
        try await GatewayHarness.with(weights: [1], routes: "  - prefix: /api/\n    upstream: tickets\n") { harness in
            let connection = try await harness.connect()
            let response = try await connection.request(.GET, "/admin")
            #expect(response.status == 404)
            #expect(response.body == #"{"code":-2,"reason":"no route for GET /admin"}"#)
            let routed = try await connection.request(.GET, "/api/x")
            #expect(routed.status == 200)
            #expect(harness.backends[0].paths == ["/api/x"])
        }
    }

    @Test func aConnectFailureIsRetriedOnAnotherBackend() async throws {
        try await GatewayHarness.with(weights: [1, 1], upstreamExtra: "    slow_start: 0s\n    passive:\n      eject_after: 1000\n") { harness in
            await harness.backends[0].stop()
            let connection = try await harness.connect()
            for _ in 0..<20 {
                let response = try await connection.request(.POST, "/buy/ticket", body: "{}")
                #expect(response.status == 200)
                #expect(response.body == "b2")
            }
            #expect(harness.backends[1].requests == 20)
        }
    }

    @Test func aRequestThatReachedABackendIsNeverRetried() async throws {
        try await GatewayHarness.with(weights: [1, 1], upstreamExtra: "    slow_start: 0s\n    passive:\n      eject_after: 1000\n") { harness in
            let connection = try await harness.connect()
            // Kill whichever backend got the slow purchase while it works on it.
            async let slow = connection.request(.POST, "/slow/2000", body: "{}")
            let arrived = try await eventually { harness.backends.map(\.requests).reduce(0, +) == 1 }
            #expect(arrived)
            let target = try #require(harness.backends.first { $0.requests == 1 })
            await target.stop()
            let response = try await slow
            #expect(response.status == 502)
            #expect(response.body.contains(#""code":-7"#))
            #expect(harness.backends.map(\.requests).reduce(0, +) == 1)
        }
    }
}

@Suite struct PipeliningTests {
    @Test func pipelinedRequestsAreAnsweredInOrderOneAtATime() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            // Three requests in one write; the middle one is slow: answers still come in order.
            let requests = "GET /first HTTP/1.1\r\nHost: gw\r\n\r\n"
                + "GET /slow/300 HTTP/1.1\r\nHost: gw\r\n\r\n"
                + "GET /third HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
            let result = try await harness.raw([Array(requests.utf8)])
            #expect(result.closedByServer)
            let statuses = result.text.components(separatedBy: "HTTP/1.1 200 OK").count - 1
            #expect(statuses == 3, "\(result.text)")
            #expect(harness.backends[0].paths == ["/first", "/slow/300", "/third"])
        }
    }

    @Test func aMalformedPipelinedRequestLetsTheOneBeforeItFinish() async throws {
        try await GatewayHarness.with(weights: [1]) { harness in
            let requests = "GET /slow/200 HTTP/1.1\r\nHost: gw\r\n\r\n"
                + "GET /bad HTTP/1.1\r\nHost: gw\r\nHost: evil\r\n\r\n"
            let result = try await harness.raw([Array(requests.utf8)])
            #expect(result.text.hasPrefix("HTTP/1.1 200 OK"), "\(result.text)")
            #expect(result.text.contains("HTTP/1.1 400"))
            #expect(result.closedByServer)
            #expect(harness.backends[0].paths == ["/slow/200"])
        }
    }
}

import GateCore
import GateProxy
import GateRules
import GateTestSupport
import NIOCore
import NIOHTTP1
import Testing

@Suite struct LimitsTests {
    @Test func slowlorisConnectionsAreClosedAtTheHeaderDeadlineWhileNormalRequestsPass() async throws {
        try await GatewayHarness.with(weights: [1], configure: { configuration in
            configuration.timeouts.header = .milliseconds(600)
        }) { harness in
            // Five clients each send a head one header line every 150 ms, never finishing it.
            let line = Array("X-Slow: 1\r\n".utf8)
            let chunks = [Array("GET / HTTP/1.1\r\nHost: gw\r\n".utf8)] + Array(repeating: line, count: 40)
            async let slow = withThrowingTaskGroup(of: RawTCPExchange.Result.self) { group in
                for _ in 0..<5 {
                    group.addTask { try await harness.raw(chunks, pause: .milliseconds(150), timeout: .seconds(10)) }
                }
                var results: [RawTCPExchange.Result] = []
                for try await result in group {
                    results.append(result)
                }
                return results
            }
            // Meanwhile a normal client is served.
            let connection = try await harness.connect()
            for _ in 0..<5 {
                let response = try await connection.request(.GET, "/x")
                #expect(response.status == 200)
            }
            for result in try await slow {
                #expect(result.closedByServer)
                #expect(result.status == 408)
                #expect(result.text.contains(#""code":-6"#))
            }
            #expect(harness.backends[0].requests == 5)
        }
    }

    @Test func anIdleKeepAliveConnectionIsClosed() async throws {
        try await GatewayHarness.with(weights: [1], configure: { configuration in
            configuration.timeouts.idle = .milliseconds(300)
        }) { harness in
            let connection = try await harness.connect()
            let response = try await connection.request(.GET, "/x")
            #expect(response.status == 200)
            let closed = await harness.closes(connection)
            #expect(closed)
        }
    }

    @Test func aConnectionAnsweredLocallyStillIdlesOut() async throws {
        try await GatewayHarness.with(weights: [1], configure: { configuration in
            configuration.timeouts.idle = .milliseconds(300)
        }) { harness in
            await harness.backends[0].stop()
            let connection = try await harness.connect()
            let response = try await connection.request(.GET, "/x")
            #expect(response.status == 502 || response.status == 503)
            // Kept alive after the local answer, then closed by the idle timeout.
            let closed = await harness.closes(connection)
            #expect(closed)
        }
    }

    @Test func aBackendSlowerThanTheResponseTimeoutIsAnswered504() async throws {
        try await GatewayHarness.with(weights: [1], upstreamExtra: "    slow_start: 0s\n    passive:\n      eject_after: 100\n", configure: { configuration in
            configuration.timeouts.upstreamResponse = .milliseconds(400)
        }) { harness in
            let connection = try await harness.connect()
            // A fast answer first arms the connection's timer; the slow request after it must
            // still get its own full deadline (the timer re-arms when it fires early).
            #expect(try await connection.request(.GET, "/x").status == 200)
            try await Task.sleep(for: .milliseconds(250))
            #expect(try await connection.request(.GET, "/slow/200").status == 200)
            let slow = try await connection.request(.GET, "/slow/3000")
            #expect(slow.status == 504)
            #expect(slow.body.contains(#""code":-7"#))
            // The connection is still usable after the local answer.
            #expect(try await connection.request(.GET, "/x").status == 200)
        }
    }

    @Test func aTricklingBodyIsAnswered408() async throws {
        try await GatewayHarness.with(weights: [1], configure: { configuration in
            configuration.timeouts.bodyRateGrace = .milliseconds(300)
            configuration.timeouts.bodyMinimumRate = 10_000
        }) { harness in
            let head = Array("POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\n".utf8)
            let chunks = [head] + Array(repeating: Array(repeating: UInt8(ascii: "a"), count: 100), count: 50)
            let result = try await harness.raw(chunks, pause: .milliseconds(100), timeout: .seconds(10))
            #expect(result.closedByServer)
            #expect(result.status == 408)
        }
    }

    struct Oversized: Sendable, CustomStringConvertible {
        let name: String
        let bytes: String
        let status: Int
        var description: String { self.name }
    }

    static let oversized: [Oversized] = [
        Oversized(name: "too many headers", bytes: "GET / HTTP/1.1\r\nHost: gw\r\n" + (0..<20).map { "X-H\($0): v\r\n" }.joined() + "\r\n", status: 431),
        Oversized(name: "header bytes", bytes: "GET / HTTP/1.1\r\nHost: gw\r\nX-Big: " + String(repeating: "b", count: 3_000) + "\r\n\r\n", status: 431),
        Oversized(name: "long URI", bytes: "GET /" + String(repeating: "u", count: 2_000) + " HTTP/1.1\r\nHost: gw\r\n\r\n", status: 414),
        Oversized(name: "declared body", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 5000\r\n\r\n", status: 413),
        Oversized(name: "chunked body past the limit", bytes: "POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" + String(repeating: "c", count: 4096) + "\r\n0\r\n\r\n", status: 413),
    ]

    @Test(arguments: Self.oversized)
    func sizeLimitsAnswerTheirStatus(_ example: Oversized) async throws {
        try await GatewayHarness.with(weights: [1], configure: { configuration in
            configuration.limits.requestHead.maximumHeaderCount = 10
            configuration.limits.requestHead.maximumHeaderBytes = 2_048
            configuration.limits.requestHead.maximumURIBytes = 1_024
            configuration.limits.requestHead.maximumBodyBytes = 1_000
        }) { harness in
            let result = try await harness.raw([Array(example.bytes.utf8)])
            #expect(result.status == example.status, "\(result.text.prefix(120))")
            #expect(result.closedByServer)
            #expect(harness.backends[0].requests == 0)
        }
    }

    @Test func connectionsPerAddressAreCapped() async throws {
        try await GatewayHarness.with(weights: [1], configure: { configuration in
            configuration.limits.maximumConnectionsPerIP = 3
        }) { harness in
            var held: [HTTPTestConnection] = []
            for _ in 0..<3 {
                let connection = try await harness.connect(from: "127.0.0.3")
                let response = try await connection.request(.GET, "/x")
                #expect(response.status == 200)
                held.append(connection)
            }
            // The fourth from that address is closed unanswered; another address still gets in.
            let fourth = try await harness.raw([Array("GET /x HTTP/1.1\r\nHost: gw\r\n\r\n".utf8)], from: "127.0.0.3")
            #expect(fourth.closedByServer)
            #expect(fourth.bytes.isEmpty)
            let other = try await harness.connect(from: "127.0.0.4")
            let response = try await other.request(.GET, "/x")
            #expect(response.status == 200)
            // Closing one frees a slot.
            await held.removeFirst().close()
            let freed = try await eventually {
                let result = try await harness.raw([Array("GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".utf8)], from: "127.0.0.3")
                return result.status == 200
            }
            #expect(freed)
            for connection in held {
                await connection.close()
            }
        }
    }

    @Test func shutdownDrainsRequestsInFlight() async throws {
        try await GatewayHarness.with(weights: [1, 1], threads: 2) { harness in
            var connections: [HTTPTestConnection] = []
            for _ in 0..<20 {
                connections.append(try await harness.connect())
            }
            let idle = try await harness.connect()
            _ = try await idle.request(.GET, "/x")
            try await withThrowingTaskGroup(of: Int.self) { group in
                for connection in connections {
                    group.addTask { try await connection.request(.POST, "/slow/600", body: "{}").status }
                }
                let arrived = try await eventually { harness.backends.map(\.requests).reduce(0, +) == 21 }
                #expect(arrived)
                await harness.gateway.shutdown(gracePeriod: .seconds(5))
                var statuses: [Int] = []
                for try await status in group {
                    statuses.append(status)
                }
                #expect(statuses == Array(repeating: 200, count: 20))
            }
            // The idle keep-alive connection was closed at once, and no new one is accepted.
            try await idle.closed.get()
            await #expect(throws: (any Error).self) {
                _ = try await harness.connect()
            }
        }
    }
}

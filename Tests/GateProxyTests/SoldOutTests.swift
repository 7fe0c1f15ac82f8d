import Foundation
import GateCore
import GateProxy
import GateRedis
import GateRules
import GateTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// The sold-out latch through the real gateway: once a backend says the sale is over, the
/// gateway answers it for the route and asks again once per recheck.
@Suite("sold-out latch", .timeLimit(.minutes(1)))
struct SoldOutTests {
    static let soldOutBody = #"{"code":-1,"msg":"sold out"}"#

    static func routes(_ soldOut: String) -> String {
        "  - path: /sale\n    upstream: tickets\n    sold_out: \(soldOut)\n  - prefix: /\n    upstream: tickets\n"
    }

    @Test("a JSON code latches the route: its answer is repeated by the gateway, at most one probe per recheck reaches the backend, and a probe that finds tickets opens it", arguments: [
        "{json_code: -1, recheck: 1s}",
        "{header: X-Sold-Out, recheck: 1s}",
    ])
    func aBackendSaysSoldOut(policy: String) async throws {
        try await GatewayHarness.with(weights: [1], routes: Self.routes(policy)) { harness in
            let backend = harness.backends[0]
            backend.stock = 3
            let connection = try await harness.connect()
            for _ in 0..<3 {
                #expect(try await connection.request(.GET, "/sale").body == #"{"code":1,"msg":"ok"}"#)
            }
            // The backend's sold-out answer closes the latch (at some point after this instant).
            let latchedAt = ContinuousClock.now
            let last = try await connection.request(.GET, "/sale")
            #expect(last.body == Self.soldOutBody)
            #expect(harness.gateway.soldOutState(route: "* /sale").latched)
            #expect(backend.requests == 4)
            // 300 more: answered by the gateway with the backend's own answer.
            for _ in 0..<300 {
                let answer = try await connection.request(.GET, "/sale")
                #expect(answer.status == 200)
                #expect(answer.body == Self.soldOutBody)
            }
            let elapsed = ContinuousClock.now - latchedAt
            // One probe per started recheck interval at most (none when it all took < 1 s).
            #expect(backend.requests - 4 <= Int(elapsed / .seconds(1)), "\(backend.requests - 4) reached the backend in \(elapsed)")
            #expect(harness.gateway.soldOutState(route: "* /sale").answered >= 300 - Int(elapsed / .seconds(1)))
            // Other routes are not latched.
            #expect(try await connection.request(.GET, "/other").body == "b1")
            // Expired reservations bring tickets back: the next probe sells and opens the route.
            backend.stock = 2
            let reopened = try await eventually(attempts: 200, every: .milliseconds(25)) {
                try await connection.request(.GET, "/sale").body == #"{"code":1,"msg":"ok"}"#
            }
            #expect(reopened)
            #expect(!harness.gateway.soldOutState(route: "* /sale").latched)
            #expect(try await connection.request(.GET, "/sale").body == #"{"code":1,"msg":"ok"}"#)
            #expect(try await connection.request(.GET, "/sale").body == Self.soldOutBody)
            #expect(harness.gateway.soldOutState(route: "* /sale").latched)
        }
    }

    @Test("one backend's 'sold out' (its own share used up) does not latch the route while another still sells; every backend's does")
    func oneBackendSoldOutIsNotTheSale() async throws {
        try await GatewayHarness.with(weights: [1, 1], routes: Self.routes("{json_code: -1, recheck: 1m}")) { harness in
            harness.backends[0].stock = 0
            harness.backends[1].stock = 4
            let connection = try await harness.connect()
            var bodies: [String] = []
            for _ in 0..<12 {
                bodies.append(try await connection.request(.GET, "/sale").body)
            }
            // Every ticket of the second backend sold, though the first said "sold out" first.
            #expect(bodies.filter { $0 == #"{"code":1,"msg":"ok"}"# }.count == 4, "\(bodies)")
            #expect(harness.backends[1].requests >= 5, "the second backend answered until it ran out too")
            // Both now say "sold out": the route is latched and answered by the gateway.
            #expect(harness.gateway.soldOutState(route: "* /sale").latched)
            let before = harness.backends.map(\.requests).reduce(0, +)
            for _ in 0..<10 {
                #expect(try await connection.request(.GET, "/sale").body == Self.soldOutBody)
            }
            #expect(harness.backends.map(\.requests).reduce(0, +) == before)
        }
    }

    @Test("a probe refused before the backend (here by a window's limit) is handed to the next request, which finds the tickets that came back")
    func aRefusedProbeIsNotSpent() async throws {
        let routes = "  - path: /sale\n    upstream: tickets\n    sold_out: {json_code: -1, recheck: 2s}\n    windows: [burst]\n"
        try await GatewayHarness.with(weights: [1], routes: routes, extra: "windows:\n  burst: {length: 1m, limit_above: 2}\n") { harness in
            let backend = harness.backends[0]
            backend.stock = 1
            // The first client buys the last ticket and is told sold out: the route latches.
            let greedy = try await harness.connect(from: "127.0.0.61")
            #expect(try await greedy.request(.GET, "/sale").body == #"{"code":1,"msg":"ok"}"#)
            #expect(try await greedy.request(.GET, "/sale").body == Self.soldOutBody)
            #expect(harness.gateway.soldOutState(route: "* /sale").latched)
            // A ticket comes back; after the recheck, the greedy client's request is the probe,
            // but the window refuses it (its third request) before any backend sees it.
            backend.stock = 1
            try await Task.sleep(for: .milliseconds(2_100))
            let limited = try await greedy.request(.GET, "/sale")
            #expect(limited.status == 429, "\(limited.body)")
            // The probe was not spent: another client's request right after probes and buys.
            let other = try await harness.connect(from: "127.0.0.62")
            #expect(try await other.request(.GET, "/sale").body == #"{"code":1,"msg":"ok"}"#)
            #expect(backend.requests == 3)
        }
    }

    @Test("the stock in Redis latches a route before any backend says so, and opens it when tickets come back")
    func theStockInRedis() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        try await RedisClient.withClient(configuration: RedisConfiguration(url: redis.url + "?timeout=5s")) { client, _ in
            _ = try await client.send("HSET", "{sale:t1}:meta", "total", "5", "sold", "5")
        }
        try await GatewayHarness.with(
            weights: [1], routes: Self.routes("{stock: {sale: t1}, recheck: 100ms}"), configure: { $0.redis = redis.url }
        ) { harness in
            let latched = try await eventually { harness.gateway.soldOutState(route: "* /sale").latched }
            #expect(latched)
            let connection = try await harness.connect()
            for _ in 0..<50 {
                let answer = try await connection.request(.GET, "/sale")
                #expect(answer.status == 200)
                #expect(answer.body == #"{"code":-12,"reason":"sold out"}"#)
            }
            #expect(harness.backends[0].requests == 0)
            // A reservation expired: one ticket back.
            try await RedisClient.withClient(configuration: RedisConfiguration(url: redis.url + "?timeout=5s")) { client, _ in
                _ = try await client.send("HSET", "{sale:t1}:meta", "sold", "4")
            }
            let opened = try await eventually { !harness.gateway.soldOutState(route: "* /sale").latched }
            #expect(opened)
            harness.backends[0].stock = 1
            #expect(try await connection.request(.GET, "/sale").body == #"{"code":1,"msg":"ok"}"#)
            #expect(harness.backends[0].requests == 1)
        }
    }
}

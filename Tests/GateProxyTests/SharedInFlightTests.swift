import Foundation
import GateCore
@testable import GateProxy
import GateRedis
import GateRules
import GateTestSupport
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// One request in flight per account across gateways sharing a real Redis.
@Suite struct SharedInFlightTests {
    static func routes(_ inFlight: String) -> String {
        "  - prefix: /slow/\n    upstream: tickets\n    purchase: true\n    in_flight: \(inFlight)\n  - prefix: /\n    upstream: tickets\n"
    }

    /// A second gateway on the harness's rules, configuration and group.
    static func secondGateway(_ harness: GatewayHarness, redis: String) async throws -> Gateway {
        var configuration = GatewayConfiguration()
        configuration.listeners = [Listener(endpoint: Endpoint(host: "127.0.0.1", port: 0))]
        configuration.redis = redis
        var logger = Logger(label: "spikegate.gateway.test.second")
        logger.logLevel = .warning
        let rules = try RulesLoader.load(directory: harness.rulesDirectory.path)
        return try await Gateway.start(configuration: configuration, rules: rules, group: harness.group, logger: logger)
    }

    private static func request(port: Int, group: any EventLoopGroup, account: String, path: String) async throws -> Int {
        let connection = try await HTTPTestConnection.connect(port: port, group: group)
        defer { Task { await connection.close() } }
        return try await connection.request(.POST, path, headers: [("X-Account-Id", account)]).status
    }

    @Test(arguments: InFlightPolicy.Store.allCases)
    func oneRequestAtATimeAcrossTwoGateways(store: InFlightPolicy.Store) async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        try await GatewayHarness.with(
            weights: [1], routes: Self.routes("{store: \(store.rawValue)}"),
            extra: InFlightTests.clientIdentity,
            // A generous command timeout: on a machine busy with the whole suite, the default
            // 50 ms can pass, and on_store_error (local) would then let each gateway admit one.
            configure: { $0.redis = redis.url + "?timeout=5s" }
        ) { harness in
            let second = try await Self.secondGateway(harness, redis: redis.url + "?timeout=5s")
            let ports = [harness.port, second.ports[0]]
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<12 {
                    group.addTask {
                        try await Self.request(port: ports[index % 2], group: harness.group, account: "bot", path: "/slow/2000")
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 1, "\(statuses)")
            #expect(statuses.filter { $0 == 429 }.count == 11, "\(statuses)")
            #expect(harness.backends[0].requests == 1)
            // Given back (owner-safe) when the answer ended: both gateways let the account in again.
            // (The Redis release is one round trip after the answer, so the first try may race it.)
            for port in ports {
                let admitted = try await eventually {
                    try await Self.request(port: port, group: harness.group, account: "bot", path: "/slow/1") == 200
                }
                #expect(admitted)
            }
            await second.shutdown(gracePeriod: .zero)
        }
    }

    @Test func aFlagLeftByACrashedGatewayLapsesAtItsTTL() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        try await GatewayHarness.with(
            weights: [1], routes: Self.routes("{ttl: 30s}"), extra: InFlightTests.clientIdentity,
            configure: { $0.redis = redis.url }
        ) { harness in
            // What a gateway killed mid-purchase leaves behind: another owner's flag with its TTL
            // (long here, so a loaded machine cannot let it lapse before the first check).
            try await RedisClient.withClient(configuration: RedisConfiguration(url: redis.url + "?timeout=5s")) { client, _ in
                _ = try await client.send("SET", "spikegate:inflight:{alice}", "crashed:1", "PX", 60_000)
            }
            #expect(try await Self.request(port: harness.port, group: harness.group, account: "alice", path: "/slow/1") == 429)
            // Time passes: the TTL runs out (shortened instead of waited for).
            try await RedisClient.withClient(configuration: RedisConfiguration(url: redis.url + "?timeout=5s")) { client, _ in
                _ = try await client.send("PEXPIRE", "spikegate:inflight:{alice}", 200)
            }
            let free = try await eventually {
                try await Self.request(port: harness.port, group: harness.group, account: "alice", path: "/slow/1") == 200
            }
            #expect(free)
            // Only the request after the lapse reached the backend: this gateway never deleted the
            // other owner's key early.
            #expect(harness.backends[0].requests == 1)
        }
    }

    @Test(arguments: [
        (InFlightPolicy.StoreErrorPolicy.local, [200, 429]),
        (.open, [200, 200]),
    ])
    func redisDownFollowsOnStoreError(policy: InFlightPolicy.StoreErrorPolicy, expected: [Int]) async throws {
        let port = try await Self.portWithNothingListening()
        try await GatewayHarness.with(
            weights: [1], routes: Self.routes("{on_store_error: \(policy.rawValue)}"), extra: InFlightTests.clientIdentity,
            configure: {
                $0.redis = "redis://127.0.0.1:\(port)"
                // Serve while Redis is down: the rule's on_store_error decides.
                $0.warmup.waitForRedis = false
            }
        ) { harness in
            // The first request is at the backend when the second of the same account comes.
            let first = Task { try await Self.request(port: harness.port, group: harness.group, account: "dave", path: "/slow/3000") }
            let arrived = try await eventually { harness.backends[0].requests == 1 }
            #expect(arrived)
            let second = try await Self.request(port: harness.port, group: harness.group, account: "dave", path: "/slow/1")
            #expect([try await first.value, second] == expected)
        }
    }

    @Test(arguments: InFlightPolicy.Store.allCases)
    func aDrainingGatewayGivesItsLastFlagsBackBeforeItCloses(store: InFlightPolicy.Store) async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        try await GatewayHarness.with(
            weights: [1], routes: Self.routes("{store: \(store.rawValue), ttl: 60s}"), extra: InFlightTests.clientIdentity,
            configure: { $0.redis = redis.url + "?timeout=5s" }
        ) { harness in
            let purchase = Task { try await Self.request(port: harness.port, group: harness.group, account: "frank", path: "/slow/300") }
            let arrived = try await eventually { harness.backends[0].requests == 1 }
            #expect(arrived)
            let keys = {
                try await RedisClient.withClient(configuration: RedisConfiguration(url: redis.url + "?timeout=5s")) { client, _ in
                    try await client.send("DBSIZE").int ?? -1
                }
            }
            #expect(try await keys() == 1)
            // Redis holds writes for 1.5 s: the release reaches it while the gateway drains, and
            // is answered only after the rest of the shutdown would have closed the connection.
            _ = try await RedisClient.withClient(configuration: RedisConfiguration(url: redis.url + "?timeout=5s")) { client, _ in
                try await client.send("CLIENT", "PAUSE", 1500, "WRITE")
            }
            // Drain: the purchase is answered, and its flag is gone from Redis by the time the
            // gateway has stopped — not left for 60 s.
            await harness.gateway.shutdown(gracePeriod: .seconds(10))
            #expect(try await purchase.value == 200)
            #expect(try await keys() == 0)
        }
    }

    @Test func redisDownFailsClosedWhenTheRuleSaysSo() async throws {
        let port = try await Self.portWithNothingListening()
        try await GatewayHarness.with(
            weights: [1], routes: Self.routes("{on_store_error: closed}"), extra: InFlightTests.clientIdentity,
            configure: {
                $0.redis = "redis://127.0.0.1:\(port)"
                // Serve while Redis is down: the rule's on_store_error decides.
                $0.warmup.waitForRedis = false
            }
        ) { harness in
            let connection = try await harness.connect()
            for _ in 0..<2 {
                let response = try await connection.request(.POST, "/slow/1", headers: [("X-Account-Id", "erin")])
                #expect(response.status == 503)
                #expect(response.body == #"{"code":-8,"reason":"the shared state store is unavailable"}"#)
            }
            #expect(harness.backends[0].requests == 0)
            // Routes without the rule are not affected.
            #expect(try await connection.request(.GET, "/other").status == 200)
        }
    }

    /// A loopback port where a server was and is no more: every Redis call to it fails.
    private static func portWithNothingListening() async throws -> Int {
        let gone = try await FakeTCPServer.start(reply: nil)
        try await gone.stop()
        return gone.port
    }
}

/// Windows with `scope: cluster`: counted across gateways through Redis.
@Suite struct ClusterWindowTests {
    static func rules(scope: String) -> String {
        "windows:\n  burst: {key: ip, length: 1m, limit_above: 10, scope: \(scope)}\n"
    }

    static let routes = "  - prefix: /buy/\n    upstream: tickets\n    windows: [burst]\n  - prefix: /\n    upstream: tickets\n"

    private static func statuses(port: Int, group: any EventLoopGroup, count: Int) async throws -> [Int] {
        let connection = try await HTTPTestConnection.connect(port: port, group: group)
        defer { Task { await connection.close() } }
        var statuses: [Int] = []
        for _ in 0..<count {
            statuses.append(try await connection.request(.POST, "/buy/x").status)
        }
        return statuses
    }

    @Test(arguments: ["cluster", "local"])
    func aClientSpreadOverTwoGatewaysIsLimitedByItsTotal(scope: String) async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        try await GatewayHarness.with(
            weights: [1], routes: Self.routes, extra: Self.rules(scope: scope),
            configure: { $0.redis = redis.url + "?timeout=5s" }
        ) { harness in
            let second = try await SharedInFlightTests.secondGateway(harness, redis: redis.url + "?timeout=5s")
            #expect(try await Self.statuses(port: harness.port, group: harness.group, count: 6) == Array(repeating: 200, count: 6))
            // The requests counted in Redis so far (every gateway's, all buckets).
            let inRedis = {
                try await RedisClient.withClient(configuration: RedisConfiguration(url: redis.url + "?timeout=5s")) { client, _ in
                    var total: Int64 = 0
                    for key in try await client.send("KEYS", "spikegate:window:*").array ?? [] {
                        total += try await client.send("GET", .string(key.string ?? "")).int ?? 0
                    }
                    return total
                }
            }
            if scope == "cluster" {
                // The first gateway's six reach Redis within a sync interval.
                #expect(try await eventually { try await inRedis() == 6 })
            }
            // The second gateway learns the cluster's count at its first sync after it sees the
            // client (batched sync: up to one interval late), then counts on from the total.
            #expect(try await Self.statuses(port: second.ports[0], group: harness.group, count: 1) == [200])
            if scope == "cluster" {
                // Its sync has brought the cluster's total back (6 + its own 1).
                #expect(try await eventually { second.abuse.clusterItemsSynced.load(ordering: .relaxed) >= 1 })
                #expect(try await inRedis() == 7)
            }
            let onSecond = try await Self.statuses(port: second.ports[0], group: harness.group, count: 7)
            if scope == "cluster" {
                // 6 + 1 + 3 = 10 allowed in the minute; the rest refused by the second gateway.
                #expect(onSecond == Array(repeating: 200, count: 3) + Array(repeating: 429, count: 4))
            } else {
                #expect(onSecond == Array(repeating: 200, count: 7))
                #expect(try await inRedis() == 0)
            }
            await second.shutdown(gracePeriod: .zero)
        }
    }
}

/// Bans shared through Redis: made on one gateway, they hold on every gateway; lifted on one,
/// they are lifted everywhere.
@Suite struct ClusterBanTests {
    @Test func aBanMadeByOneGatewayHoldsOnTheOtherUntilItIsLifted() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        let windows = "windows:\n  w: {key: ip, length: 1m, ban_above: 2, ban_for: 10m}\n"
        try await GatewayHarness.with(
            weights: [1], routes: ClusterWindowTests.routes.replacingOccurrences(of: "[burst]", with: "[w]"), extra: windows,
            configure: { $0.redis = redis.url + "?timeout=5s" }
        ) { harness in
            let second = try await SharedInFlightTests.secondGateway(harness, redis: redis.url + "?timeout=5s")
            let other = try await HTTPTestConnection.connect(host: "127.0.0.1", port: second.ports[0], from: "127.0.0.31", group: harness.group)
            #expect(try await other.request(.GET, "/elsewhere").status == 200)
            // Banned on the first gateway…
            let client = try await harness.connect(from: "127.0.0.31")
            var statuses: [Int] = []
            for _ in 0..<3 {
                statuses.append(try await client.request(.POST, "/buy/x").status)
            }
            #expect(statuses == [200, 200, 403])
            // …and, within a sync round, on the second, on every route.
            let sharedBan = try await eventually { try await other.request(.GET, "/elsewhere").status == 403 }
            #expect(sharedBan)
            #expect(second.blocked(kind: .ip).map(\.key) == ["127.0.0.31"])
            #expect(second.blocked(kind: .ip).first?.rule == "w")
            let secondsLeft = try #require(second.blocked(kind: .ip).first.map { $0.until - MonotonicInstant.now() })
            #expect(secondsLeft > .seconds(500) && secondsLeft <= .seconds(600))
            // An operator lifts it on the first gateway: lifted on the second too.
            #expect(harness.gateway.unblock(.ip, "127.0.0.31"))
            let lifted = try await eventually { try await other.request(.GET, "/elsewhere").status == 200 }
            #expect(lifted)
            #expect(second.blocked().isEmpty)
            await other.close()
            await second.shutdown(gracePeriod: .zero)
        }
    }
}

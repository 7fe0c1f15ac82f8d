import Foundation
import GateRedis
import GateTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// The replayed mini attack of the anti-cheat issue on real processes: two `spikegate gateway`
/// processes sharing one real Redis (or a three-primary Redis Cluster) in front of one slow
/// backend.
@Suite("mini attack on two gateway processes sharing Redis (one server, or a Redis Cluster)", .timeLimit(.minutes(2)))
struct MiniAttackTests {
    /// Purchases on `/slow/` hold the account's flag in Redis (WATCH mode) for at most 3 s.
    static func rules(backend: Int) -> String {
        """
        identity: {header: X-Account-Id, trust: clients}
        upstreams:
          tickets:
            backends: [{address: '127.0.0.1:\(backend)'}]
            slow_start: 0s
        routes:
          - prefix: /slow/
            upstream: tickets
            purchase: true
            in_flight: {store: watch, ttl: 3s, on_store_error: closed}
          - prefix: /
            upstream: tickets

        """
    }

    /// A gateway process on its own port, one thread, the shared Redis with a generous command
    /// timeout (the machine runs the rest of the suite at the same time).
    static func gateway(rules: URL, redis: String) throws -> (process: SpikegateProcess, port: Int) {
        let port = try freeLoopbackPort()
        let process = try SpikegateProcess.start([
            "gateway", "--listen", "127.0.0.1:\(port)", "--rules", rules.path, "--threads", "1", "--redis", redis + "?timeout=2s",
        ])
        return (process, port)
    }

    /// Two gateway processes with the rule file `rules` on `redis`, each answering before this
    /// returns; `stop` kills both and removes the rules.
    final class TwoGateways: Sendable {
        let a: (process: SpikegateProcess, port: Int)
        let b: (process: SpikegateProcess, port: Int)
        private let directory: URL

        init(rules: String, redis: String, group: any EventLoopGroup) async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spikegate-attack-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try rules.write(to: directory.appendingPathComponent("rules.yaml"), atomically: true, encoding: .utf8)
            self.directory = directory
            self.a = try MiniAttackTests.gateway(rules: directory, redis: redis)
            self.b = try MiniAttackTests.gateway(rules: directory, redis: redis)
            for gateway in [self.a, self.b] {
                let up = try await eventually {
                    (try? await MiniAttackTests.buy(port: gateway.port, group: group, account: "probe-\(gateway.port)", path: "/ping").status) == 200
                }
                guard up else {
                    let printed = gateway.process.printed
                    self.stop()
                    throw TestSupportError("a gateway never answered: \(printed)")
                }
            }
        }

        func stop() {
            self.a.process.kill()
            self.b.process.kill()
            try? FileManager.default.removeItem(at: self.directory)
        }
    }

    static func buy(port: Int, group: any EventLoopGroup, account: String, path: String) async throws -> HTTPTestConnection.Response {
        let connection = try await HTTPTestConnection.connect(port: port, group: group)
        defer { Task { await connection.close() } }
        return try await connection.request(.POST, path, headers: [("X-Account-Id", account)], body: "{}")
    }

    /// One redis-server, or a three-primary Redis Cluster; its URL, and how to stop it.
    static func startRedis(_ kind: String) async throws -> (url: String, stop: @Sendable () -> Void) {
        if kind == "cluster" {
            let cluster = try await RedisClusterProcess.start()
            return (cluster.url, { cluster.stop() })
        }
        let server = try await RedisServerProcess.start()
        return (server.url, { server.stop() })
    }

    @Test(
        "one bot account firing 100 parallel requests through two gateways: one at a time reaches the backend; a gateway killed holding a flag frees it at the TTL",
        arguments: ["single", "cluster"]
    )
    func oneBotTwoGateways(redisKind: String) async throws {
        let redis = try await Self.startRedis(redisKind)
        defer { redis.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let backend = try await TestBackend.start(name: "tickets", group: group)
        let gateways = try await TwoGateways(rules: Self.rules(backend: backend.port), redis: redis.url, group: group)
        defer { gateways.stop() }
        let (a, b) = (gateways.a, gateways.b)
        backend.resetCounts()

        // 100 requests of one account at once, half through each gateway, at a backend that
        // takes 3 s: exactly one is let through; the rest are refused as in flight.
        let answers = try await withThrowingTaskGroup(of: HTTPTestConnection.Response.self) { tasks in
            for index in 0..<100 {
                let port = index % 2 == 0 ? a.port : b.port
                tasks.addTask { try await Self.buy(port: port, group: group, account: "bot-7", path: "/slow/3000") }
            }
            return try await tasks.reduce(into: [HTTPTestConnection.Response]()) { $0.append($1) }
        }
        let admitted = answers.filter { $0.status == 200 }
        let refused = answers.filter { $0.status == 429 }
        // A flag Redis could not decide in time (a busy machine: every exclusive connection
        // taken) is refused too, as `on_store_error: closed` says (503, code -8).
        let storeClosed = answers.filter { $0.status == 503 && $0.body.contains("\"code\":-8") }
        #expect(admitted.count == 1, "\(answers.map(\.status))")
        #expect(refused.count + storeClosed.count == 99, "\(answers.map(\.status))")
        #expect(refused.count >= 50, "most are refused as in flight: \(answers.map(\.status))")
        #expect(refused.allSatisfy { $0.body.contains("\"code\":-4") && $0.body.contains("request in flight") })
        #expect(backend.requests == 1)
        #expect(backend.peakConcurrentRequests == 1)
        // Given back when the answer ended: both gateways let the account in again.
        for gateway in [a, b] {
            let again = try await eventually { try await Self.buy(port: gateway.port, group: group, account: "bot-7", path: "/slow/1").status == 200 }
            #expect(again)
        }

        // Gateway A is killed (SIGKILL) while its request holds the account's flag in Redis.
        let flagKey = "spikegate:inflight:{victim}"
        let held = Task { try? await Self.buy(port: a.port, group: group, account: "victim", path: "/slow/10000") }
        let arrived = try await eventually { backend.paths.contains("/slow/10000") }
        #expect(arrived)
        a.process.kill()
        held.cancel()
        let ttl = try await RedisClient.withClient(configuration: RedisConfiguration(url: redis.url + "?timeout=5s")) { client, _ in
            try await client.send("PTTL", .string(flagKey)).int ?? -2
        }
        #expect(ttl > 0 && ttl <= 3_000, "the dead gateway's flag has its TTL: \(ttl) ms")
        // Gateway B refuses the account while the dead gateway's flag lives, then lets it in.
        let whileHeld = try await Self.buy(port: b.port, group: group, account: "victim", path: "/slow/1")
        #expect(whileHeld.status == 429)
        let freed = try await eventually(attempts: 300) {
            try await Self.buy(port: b.port, group: group, account: "victim", path: "/slow/1").status == 200
        }
        #expect(freed, "the flag of the killed gateway lapsed at its TTL")

        await backend.stop()
        try await group.shutdownGracefully()
    }

    @Test("on a Redis Cluster, a client spread over two gateways is limited by its total, and a ban made by one gateway holds on the other")
    func windowsAndBansAcrossGatewaysOnACluster() async throws {
        let redis = try await Self.startRedis("cluster")
        defer { redis.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let backend = try await TestBackend.start(name: "tickets", group: group)
        // Each gateway alone sees half the requests: only the cluster's count crosses 20, then 40.
        let rules = """
            upstreams:
              tickets:
                backends: [{address: '127.0.0.1:\(backend.port)'}]
                slow_start: 0s
            windows:
              spread: {key: ip, scope: cluster, length: 1m, limit_above: 20, ban_above: 40, ban_for: 1m}
            routes:
              - prefix: /
                upstream: tickets
                windows: [spread]

            """
        let gateways = try await TwoGateways(rules: rules, redis: redis.url, group: group)
        defer { gateways.stop() }
        let (a, b) = (gateways.a, gateways.b)
        // Alternate gateways, 40 ms apart (the counts meet in Redis every 250 ms), until the
        // ban; at most 200 requests.
        var statuses: [Int] = []
        for index in 0..<200 {
            let port = index % 2 == 0 ? a.port : b.port
            let answer = try await Self.buy(port: port, group: group, account: "spread", path: "/item/\(index)")
            statuses.append(answer.status)
            if answer.status == 403 {
                break
            }
            try await Task.sleep(for: .milliseconds(40))
        }
        let limited = statuses.firstIndex(of: 429)
        #expect(limited != nil, "never limited: each gateway counted alone? \(statuses)")
        #expect((limited ?? 0) >= 18, "limited before the cluster saw 20 (two probes counted first): \(statuses)")
        #expect((limited ?? 100) < 40, "limited only after both gateways alone would have: \(statuses)")
        #expect(statuses.last == 403, "never banned: \(statuses)")
        // The ban, made by one gateway, reaches the other through Redis.
        for gateway in [a, b] {
            let banned = try await eventually(attempts: 100) {
                try await Self.buy(port: gateway.port, group: group, account: "spread", path: "/after").status == 403
            }
            #expect(banned, "gateway \(gateway.port) let a banned client in")
        }
        await backend.stop()
        try await group.shutdownGracefully()
    }
}

import GateCore
import GateRedis
import GateTestSupport
import NIOCore
import NIOPosix
import Testing

/// The client behind Redis Sentinel: it finds the primary, and after the primary is killed it
/// follows the fail-over to the promoted replica by itself.
@Suite("GateRedis behind a real Redis Sentinel", .serialized, .timeLimit(.minutes(3)))
struct RedisSentinelTests {
    @Test("the primary is found through the sentinels; killed, the client writes to the promoted replica; acknowledged writes survive")
    func followsFailover() async throws {
        let sentinel = try await RedisSentinelProcess.start()
        defer { sentinel.stop() }
        try await withClient(url: sentinel.url, configure: { $0.commandTimeout = .seconds(1) }) { client, _ in
            try await client.connect()
            #expect(try await client.send("ROLE").array?.first?.string == "master")
            for index in 0..<100 {
                _ = try await client.send("SET", .string("k\(index)"), .integer(Int64(index)))
            }
            // Every write so far is on both replicas before the primary dies.
            #expect(try await client.withConnection { try await $0.send(RedisCommand("WAIT", 2, 5_000), timeout: .seconds(6)).get() } == .integer(2))
            let old = sentinel.primary.port
            sentinel.primary.kill()
            let promoted = try await sentinel.waitForFailover(from: old)
            #expect(promoted != old)
            // Commands fail while the fail-over runs, then reach the new primary.
            let resumed = try await eventually(attempts: 300, every: .milliseconds(100)) {
                (try? await client.send("SET", "after", "failover")) == .simpleString("OK")
            }
            #expect(resumed, "the client never reached the promoted replica")
            #expect(try await client.send("GET", "k99").string == "99", "a write acknowledged by the replicas survived")
            #expect(try await sentinel.cli(promoted, ["get", "after"]) == "failover", "the write went to the new primary")
        }
    }

    @Test("a sentinel URL names the primary; bad ones are refused with what is wrong")
    func urls() throws {
        let configuration = try RedisConfiguration(url: "redis-sentinel://:secret@10.0.0.1,10.0.0.2:26380/sale/2")
        #expect(configuration.topology == .sentinel(sentinels: [.tcp(host: "10.0.0.1", port: 26_379), .tcp(host: "10.0.0.2", port: 26_380)], primaryName: "sale"))
        #expect(configuration.password == "secret" && configuration.database == 2)
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis-sentinel://10.0.0.1") }
        let cluster = try RedisConfiguration(url: "redis-cluster://10.0.0.1:7000,[::1]:7001")
        #expect(cluster.topology == .cluster(seeds: [.tcp(host: "10.0.0.1", port: 7_000), .tcp(host: "::1", port: 7_001)]))
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis-cluster://10.0.0.1:7000/3") }
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis://10.0.0.1:7000,10.0.0.2:7000") }
    }
}

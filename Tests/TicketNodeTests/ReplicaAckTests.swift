import Foundation
import GateCore
import GateRedis
import GateTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
import TicketNode

/// `--min-replicas-ack`: a purchase is answered as done only once enough replicas have it;
/// otherwise "not confirmed" (code -13), and the reconciler settles it later — confirmed once a
/// replica catches up, lost when the primary no longer has it.
@Suite("Ticket node waiting for replica acknowledgements", .serialized, .timeLimit(.minutes(2)))
struct ReplicaAckTests {
    @Test("with a replica: bought as usual; replica gone: not confirmed; a new replica: confirmed; a write the primary lost: lost, share given back")
    func unconfirmedPurchasesAreReconciled() async throws {
        // A replica's full sync starts at once instead of after the default 5 s.
        try await withRedisServer(arguments: ["--repl-diskless-sync-delay", "0"]) { primary in
            var replica: RedisServerProcess? = try await RedisServerProcess.start(arguments: ["--replicaof", "127.0.0.1", "\(primary.port)"])
            defer { replica?.stop() }
            var configuration = try RedisConfiguration(url: primary.url)
            configuration.commandTimeout = .seconds(5)
            try await RedisClient.withClient(configuration: configuration, threads: 1) { redis, group in
                let store = try SaleStore(redis: redis, sale: "acked")
                try await store.initialize(tickets: 10, payTimeout: .seconds(600), force: false)
                var node = TicketNodeConfiguration(port: 0, sale: "acked", name: "n1", localStock: 10)
                node.reconcileInterval = .milliseconds(200)
                node.minReplicasAck = 1
                node.replicaAckTimeout = .milliseconds(200)
                let server = try await TicketNodeServer.start(configuration: node, redis: redis, group: group)
                let http = try await HTTPTestConnection.connect(port: server.port, group: group)

                // Once the replica is in sync, it acknowledges: an ordinary purchase.
                let synced = try await eventually(attempts: 250) {
                    try await redis.send("INFO", "replication").string?.contains("state=online") == true
                }
                #expect(synced, "the replica never came online")
                // Its first acknowledgement may take a moment after the sync.
                let acknowledging: RESPValue = try await redis.withConnection { connection in
                    _ = try await connection.send(RedisCommand("SET", "probe", "1")).get()
                    return try await connection.send(RedisCommand("WAIT", 1, 5_000), timeout: .seconds(6)).get()
                }
                #expect(acknowledging == .integer(1))
                let early = try await http.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "early")])
                #expect(early.status == 200 && early.body.contains("\"code\":1"), "\(early.body)")

                // No replica: the primary reserves, nobody acknowledges in 200 ms.
                replica?.stop()
                replica = nil
                let unconfirmed = try await http.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "alone")])
                #expect(unconfirmed.status == 503, "\(unconfirmed.body)")
                #expect(unconfirmed.body.contains("\"code\":-13") && unconfirmed.body.contains("0 of 1 replicas"), "\(unconfirmed.body)")
                #expect(unconfirmed.header("Retry-After") == "1")
                let order = try #require(unconfirmed.body.split(separator: "\"").dropLast().last.map(String.init))
                // Asking again finds the same reservation (one ticket, not two), still not
                // confirmed: no replica has it.
                let again = try await http.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "alone")])
                #expect(again.body.contains("\"code\":-13") && again.body.contains("\"order\":\"\(order)\""), "\(again.body)")
                #expect(server.unconfirmedWrites == 1)
                // Still no replica: it stays pending.
                try await Task.sleep(for: .milliseconds(600))
                #expect(server.unconfirmedWrites == 1)

                // A replica comes back and syncs: the reconciler confirms the purchase.
                replica = try await RedisServerProcess.start(arguments: ["--replicaof", "127.0.0.1", "\(primary.port)"])
                let confirmed = try await eventually(attempts: 500) { server.unconfirmedWrites == 0 }
                #expect(confirmed, "the purchase was never confirmed")
                let stock = try await http.request(.GET, "/stock")
                #expect(stock.body.contains("\"confirmed_later\":1") && stock.body.contains("\"lost\":0"), "\(stock.body)")
                // Confirmed, asking again is an ordinary "already holds".
                let held = try await http.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "alone")])
                #expect(held.status == 200 && held.body.contains("\"code\":-2"), "\(held.body)")

                // A purchase the primary then loses (as a fail-over to a replica without it would):
                // the reconciler finds it gone and gives the node's share back.
                replica?.stop()
                replica = nil
                let doomed = try await http.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "doomed")])
                #expect(doomed.body.contains("\"code\":-13"), "\(doomed.body)")
                let doomedOrder = try #require(doomed.body.split(separator: "\"").dropLast().last.map(String.init))
                let takenBefore = server.stock.snapshot.taken
                _ = try await redis.evaluate(
                    RedisScript("""
                        redis.call('HDEL', KEYS[1], ARGV[1])
                        redis.call('HDEL', KEYS[2], ARGV[2])
                        redis.call('HINCRBY', KEYS[3], 'sold', -1)
                        return 1
                        """),
                    keys: [store.keys.orders, store.keys.holders, store.keys.meta],
                    arguments: [.string(doomedOrder), "doomed"]
                )
                let lost = try await eventually(attempts: 250) { server.unconfirmedWrites == 0 }
                #expect(lost)
                #expect(server.stock.snapshot.taken == takenBefore - 1, "the lost purchase's share was given back")
                let after = try await http.request(.GET, "/stock")
                #expect(after.body.contains("\"lost\":1"), "\(after.body)")
                await http.close()
                try await server.stop()
            }
        }
    }
}

import GateCore
import GateRedis
import GateTestSupport
import NIOCore
import NIOPosix
import Testing

/// The client against a real three-primary Redis Cluster: routing by slot, pipelines split by
/// primary, scripts on their slot's primary, and the redirections of a slot that moves.
@Suite("GateRedis against a real Redis Cluster", .serialized, .timeLimit(.minutes(3)))
struct RedisClusterTests {
    @Test("commands, pipelines and scripts go to the primary of their slot; every primary gets its share")
    func routing() async throws {
        try await withRedisCluster { cluster in
            try await withClient(url: cluster.url, threads: 2) { client, _ in
                try await client.connect()
                #expect(client.isCluster)
                #expect(client.clusterSlotMap?.servingNodes.count == 3)
                #expect(client.clusterSlotMap?.unservedSlots == 0)
                for index in 0..<100 {
                    #expect(try await client.send("SET", .string("key-\(index)"), .integer(Int64(index))) == .simpleString("OK"))
                }
                // One pipeline over every primary: the replies come back in the order sent.
                let replies = try await client.pipeline((0..<100).map { RedisCommand("INCR", .string("key-\($0)")) })
                #expect(replies.map(\.int) == (0..<100).map { Int64?(Int64($0) + 1) })
                // Each primary holds exactly the keys of its slots.
                var total = 0
                for server in cluster.servers {
                    let size = Int(try await cluster.cli(server.port, ["dbsize"])) ?? -1
                    #expect(size > 10, "a primary got \(size) of 100 keys")
                    total += size
                }
                #expect(total == 100)
                // A script with keys of one slot (a hash tag) runs on that slot's primary.
                let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1]) + redis.call('INCRBY', KEYS[2], ARGV[1])")
                try await client.load(script)
                let sum = try await client.evaluate(script, keys: ["{sale:x}:a", "{sale:x}:b"], arguments: [5])
                #expect(sum == .integer(10))
                // Keys of two slots in one command: Redis refuses it, and the error says so.
                let crossed = await redisError { try await client.send("MGET", "{a}1", "{b}1") }
                #expect(crossed?.serverErrorPrefix == "CROSSSLOT", "\(String(describing: crossed))")
                // A transaction on the slot's primary.
                let committed = try await client.withConnection(forKey: "{sale:x}:a") { connection in
                    try await connection.transaction([RedisCommand("INCR", "{sale:x}:a"), RedisCommand("INCR", "{sale:x}:b")])
                }
                #expect("\(committed)".contains("committed"))
                // Without a key, a transaction could go to any primary: refused.
                let keyless = await redisError { try await client.withConnection { _ in 1 } }
                #expect(keyless?.code == .unsupportedCommand, "\(String(describing: keyless))")
            }
        }
    }

    @Test("a slot moved behind the client's back: MOVED is followed and the map learns it; ASK during the move")
    func redirections() async throws {
        try await withRedisCluster { cluster in
            try await withClient(url: cluster.url) { client, _ in
                try await client.connect()
                let key = "{sale:moving}:meta"
                let slot = RedisHashSlot.of(key)
                _ = try await client.send("SET", .string(key), "before")
                let source = try await cluster.owner(ofSlot: slot)
                let target = try #require(cluster.servers.map(\.port).first { $0 != source })
                #expect(client.clusterSlotMap?.node(forSlot: slot)?.port == source)
                try await cluster.migrate(slot: slot, to: target) { step in
                    switch step {
                    case .marked:
                        // The key is still on the source: answered there.
                        #expect(try await client.send("GET", .string(key)).string == "before")
                        // A new key of the slot goes to the target through ASK.
                        _ = try await client.send("SET", .string("{sale:moving}:new"), "asked")
                        #expect(Int(try await cluster.cli(source, ["cluster", "countkeysinslot", "\(slot)"])) == 1)
                        #expect(Int(try await cluster.cli(target, ["cluster", "countkeysinslot", "\(slot)"])) == 1, "the new key went to the target")
                    case .keysMoved:
                        // Every key is on the target; the source says ASK.
                        #expect(try await client.send("GET", .string(key)).string == "before")
                        #expect(try await client.send("GET", "{sale:moving}:new").string == "asked")
                        // A script the target has never seen: NOSCRIPT there, so it goes as EVAL
                        // (a SCRIPT LOAD by slot would reach the source, not the target).
                        try await cluster.cli(target, ["script", "flush"])
                        let script = RedisScript("return redis.call('GET', KEYS[1])")
                        #expect(try await client.evaluate(script, keys: [key]).string == "before")
                    }
                }
                // Done: the source answers MOVED, which the client follows and remembers.
                #expect(try await client.send("GET", .string(key)).string == "before")
                #expect(client.clusterSlotMap?.node(forSlot: slot)?.port == target)
                #expect(Int(try await cluster.cli(target, ["cluster", "countkeysinslot", "\(slot)"])) == 2)
            }
        }
    }
}

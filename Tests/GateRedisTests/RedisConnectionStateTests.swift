import GateCore
import GateRedis
import GateTestSupport
import NIOCore
import NIOPosix
import Testing

/// Connection state must never leak from one user to the next, and nothing may hang.
@Suite("GateRedis connection state and failure paths", .timeLimit(.minutes(2)))
struct RedisConnectionStateTests {
    @Test("the shared connection refuses commands that change or block it", arguments: [
        RedisCommand("MULTI"), RedisCommand("watch", "k"), RedisCommand("SELECT", 2), RedisCommand("SUBSCRIBE", "ch"),
        RedisCommand("BLPOP", "q", 0), RedisCommand("CLIENT", "SETNAME", "x"), RedisCommand("XREAD", "BLOCK", 0, "STREAMS", "s", "$"),
        RedisCommand("WAIT", 1, 0),
    ])
    func sharedRefuses(command: RedisCommand) async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url) { client, _ in
                let error = await redisError { try await client.send(command) }
                #expect(error?.code == .unsupportedCommand)
                #expect(error?.message.contains("withConnection") == true)
                let inPipeline = await redisError { try await client.pipeline([RedisCommand("PING"), command]) }
                #expect(inPipeline?.code == .unsupportedCommand)
                let pong = try await client.send("PING")
                #expect(pong == .simpleString("PONG"))
            }
        }
    }

    @Test("a blocking command on an exclusive connection runs with its own timeout; an empty pipeline is no command")
    func blockingCommandWithItsOwnTimeout() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url, configure: { $0.commandTimeout = .milliseconds(100) }) { client, _ in
                let popped = try await client.withConnection { connection in
                    try await connection.send(RedisCommand("BLPOP", "empty-queue", "0.3"), timeout: .seconds(5))
                }
                #expect(popped.isNull)
                #expect(await client.circuitPhases() == [.closed])
                #expect(try await client.pipeline([]) == [])
            }
        }
    }

    @Test("an exclusive connection that ran SELECT is closed on release, not handed on")
    func sessionStateIsNotInherited() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url, configure: { $0.exclusiveConnectionsPerLoop = 1 }) { client, _ in
                let firstID = try await client.withConnection { connection in
                    _ = try await connection.send(RedisCommand("SELECT", 5))
                    return try await connection.send(RedisCommand("CLIENT", "ID")).int
                }
                let (secondID, info) = try await client.withConnection { connection in
                    (try await connection.send(RedisCommand("CLIENT", "ID")).int,
                     try await connection.send(RedisCommand("CLIENT", "INFO")).string ?? "")
                }
                #expect(firstID != secondID)
                #expect(info.contains(" db=0 "), "\(info)")
            }
        }
    }

    @Test("EXEC without MULTI leaves the WATCH in place, and the pool still resets it")
    func execWithoutMultiKeepsWatch() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url, configure: { $0.exclusiveConnectionsPerLoop = 1 }) { client, _ in
                try await client.withConnection { connection in
                    try await connection.watch("k")
                    let error = await redisError { try await connection.exec() }
                    #expect(error?.code == .serverError)
                }
                _ = try await client.send("SET", "k", "changed")
                let result = try await client.withConnection { connection in
                    try await connection.transaction([RedisCommand("SET", "k", "mine")])
                }
                #expect(result == .committed([.simpleString("OK")]))
            }
        }
    }

    @Test("a connection released from its own timeout callback is closed, not handed to the next user")
    func releaseFromTimeoutCallback() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url, configure: {
                $0.exclusiveConnectionsPerLoop = 1
                $0.commandTimeout = .milliseconds(100)
                $0.circuitBreaker = .init(failureThreshold: 1_000)
            }) { client, group in
                let loop = group.next()
                let first = try await client.leaseConnection(on: loop).get()
                let firstID = try await first.send(RedisCommand("CLIENT", "ID")).get().int
                let (blocked, nextLease) = try await loop.submit {
                    let blocked = first.send(RedisCommand("BLPOP", "nothing", "2"))
                    blocked.whenComplete { _ in first.release() }
                    return (blocked, client.leaseConnection(on: loop))
                }.get()
                let error = await redisError { try await blocked.get() }
                #expect(error?.code == .timeout)
                var second: RedisExclusiveConnection?
                do {
                    second = try await nextLease.get()
                } catch {
                    // With a 100 ms command timeout the default acquire timeout may pass first;
                    // lease again: the point is which connection comes back.
                    second = try await client.leaseConnection(on: loop).get()
                }
                let secondID = try await second?.send(RedisCommand("CLIENT", "ID")).get().int
                #expect(firstID != nil && secondID != nil)
                #expect(firstID != secondID, "the timed-out connection must not be reused")
                second?.release()
            }
        }
    }

    @Test("a send on a leased connection the server closed fails instead of hanging; the pool recovers")
    func sendOnKilledConnection() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url, configure: { $0.exclusiveConnectionsPerLoop = 1 }) { client, group in
                let loop = group.next()
                let lease = try await client.leaseConnection(on: loop).get()
                let id = try await lease.send(RedisCommand("CLIENT", "ID")).get().int ?? -1
                #expect(try await client.send("CLIENT", "KILL", "ID", .integer(id)) == .integer(1))
                var codes: [RedisError.Code] = []
                for _ in 0..<3 {
                    codes.append(await redisError { try await lease.send(RedisCommand("PING")).get() }?.code ?? .serverError)
                }
                #expect(codes == [.connectionClosed, .connectionClosed, .connectionClosed])
                lease.release()
                let again = try await client.leaseConnection(on: loop).get()
                #expect(try await again.send(RedisCommand("PING")).get() == .simpleString("PONG"))
                again.release()
            }
        }
    }

    @Test("a half-open breaker closes on its probe's reply, even on a healthy shared connection")
    func probeClosesBreaker() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url, configure: {
                $0.commandTimeout = .milliseconds(100)
                // Open long enough that a busy machine still finds it open right after.
                $0.circuitBreaker = .init(failureThreshold: 2, openDuration: .milliseconds(1_500))
                $0.exclusiveConnectionsPerLoop = 4
            }) { client, group in
                let loop = group.next()
                #expect(try await client.send("PING") == .simpleString("PONG"))
                // Two exclusive connections time out; released, they are closed (no late reply).
                let leases = [try await client.leaseConnection(on: loop).get(), try await client.leaseConnection(on: loop).get()]
                for lease in leases {
                    let error = await redisError { try await lease.send(RedisCommand("BLPOP", "nothing", "1")).get() }
                    #expect(error?.code == .timeout)
                    lease.release()
                }
                let refused = await redisError { try await client.send("PING") }
                #expect(refused?.code == .circuitOpen)

                let answered = try await eventually { (try? await client.send("PING")) != nil }
                #expect(answered)
                var after: [String] = []
                for _ in 0..<8 {
                    after.append((try? await client.send("PING"))?.string ?? "refused")
                }
                #expect(after == Array(repeating: "PONG", count: 8))
                #expect(await client.circuitPhases() == [.closed])
            }
        }
    }

    @Test("a peer that stops answering is closed after the silence limit so the client dials again")
    func silentPeerIsRedialled() async throws {
        try await withFakeTCPServer(reply: nil) { server in
            try await withClient(url: "redis://127.0.0.1:\(server.port)", configure: {
                $0.commandTimeout = .milliseconds(50)
                $0.silentPeerTimeout = .milliseconds(300)
                $0.circuitBreaker = .init(failureThreshold: 1_000)
            }) { client, _ in
                let error = await redisError { try await client.send("PING") }
                #expect(error?.code == .timeout)
                let closed = try await eventually { server.closed >= 1 }
                #expect(closed, "the silent connection was never closed")
                let redialled = try await eventually { server.accepted >= 2 }
                #expect(redialled, "the client did not dial again")
            }
        }
    }
}

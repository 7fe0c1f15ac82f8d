import GateCore
import GateRedis
import GateTestSupport
import NIOCore
import NIOPosix
import Testing

@Suite("GateRedis against a real redis-server", .timeLimit(.minutes(2)))
struct RedisClientTests {
    @Test("1,000 pipelined commands on one connection come back in order")
    func pipelinedInOrder() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url) { client, group in
                let loop = group.next()
                // All 1,000 are written from the loop before any reply can be read.
                let futures = try await loop.submit {
                    (0..<1_000).map { _ in client.send(RedisCommand("INCR", "counter"), on: loop) }
                }.get()
                var replies: [Int64] = []
                for future in futures {
                    replies.append(try await future.get().int ?? -1)
                }
                #expect(replies == Array(1...1_000))

                let batch = try await client.pipeline((0..<1_000).map { RedisCommand("RPUSH", "list", .integer(Int64($0))) })
                #expect(batch.map(\.int) == (1...1_000).map { Int64?($0) })
                let listed = try await client.send("LRANGE", "list", 0, -1)
                #expect(listed.array?.compactMap(\.int) == (0..<1_000).map(Int64.init))

                let clients = try await client.send("INFO", "clients").string ?? ""
                #expect(clients.contains("connected_clients:1\r\n"), "expected one connection: \(clients)")
            }
        }
    }

    @Test("200 concurrent WATCH/INCR transactions: committed EXECs equal the final value")
    func concurrentTransactions() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url, threads: 2, configure: { $0.exclusiveConnectionsPerLoop = 16 }) { client, _ in
                _ = try await client.send("SET", "seat", 0)
                let outcomes = try await withThrowingTaskGroup(of: RedisTransactionResult.self) { tasks in
                    for _ in 0..<200 {
                        tasks.addTask {
                            try await client.withConnection { connection in
                                try await connection.watch("seat")
                                let current = try await connection.send(RedisCommand("GET", "seat")).int ?? -1
                                return try await connection.transaction([RedisCommand("SET", "seat", .integer(current + 1))])
                            }
                        }
                    }
                    var all: [RedisTransactionResult] = []
                    for try await outcome in tasks {
                        all.append(outcome)
                    }
                    return all
                }
                let committed = outcomes.filter { $0 != .aborted }.count
                let final = try await client.send("GET", "seat").int
                #expect(outcomes.count == 200)
                #expect(committed >= 1)
                #expect(final == Int64(committed))
            }
        }
    }

    @Test("a nil EXEC is .aborted when a watched key changed")
    func abortedExec() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url) { client, _ in
                let result = try await client.withConnection { connection in
                    try await connection.watch("flag")
                    _ = try await client.send("SET", "flag", "theirs")
                    return try await connection.transaction([RedisCommand("SET", "flag", "mine")])
                }
                #expect(result == .aborted)
                #expect(try await client.send("GET", "flag").string == "theirs")

                let committed = try await client.withConnection { connection in
                    try await connection.watch("flag")
                    try await connection.multi()
                    _ = try await connection.send(RedisCommand("SET", "flag", "mine"))
                    return try await connection.exec()
                }
                #expect(committed == .committed([.simpleString("OK")]))
            }
        }
    }

    @Test("a connection handed back mid-WATCH or mid-MULTI is reset before reuse")
    func poolResetsTransactions() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url, configure: { $0.exclusiveConnectionsPerLoop = 1 }) { client, _ in
                let firstID = try await client.withConnection { connection in
                    try await connection.watch("k")
                    return try await connection.send(RedisCommand("CLIENT", "ID")).int
                }
                _ = try await client.send("SET", "k", "changed")
                let (secondID, result) = try await client.withConnection { connection in
                    let id = try await connection.send(RedisCommand("CLIENT", "ID")).int
                    return (id, try await connection.transaction([RedisCommand("SET", "k", "mine")]))
                }
                #expect(firstID == secondID, "the pool of one must hand out the same connection")
                #expect(result == .committed([.simpleString("OK")]), "the stale WATCH must have been UNWATCHed")

                try await client.withConnection { connection in
                    try await connection.multi()
                    #expect(try await connection.send(RedisCommand("SET", "k", "queued")) == .simpleString("QUEUED"))
                }
                let afterDiscard = try await client.withConnection { connection in
                    try await connection.send(RedisCommand("GET", "k"))
                }
                #expect(afterDiscard.string == "mine", "the open MULTI must have been DISCARDed")
            }
        }
    }

    @Test("a busy pool fails with poolExhausted after the acquire timeout")
    func poolExhausted() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url, configure: {
                $0.exclusiveConnectionsPerLoop = 1
                $0.acquireTimeout = .milliseconds(100)
            }) { client, group in
                let loop = group.next()
                let held = try await client.leaseConnection(on: loop).get()
                let error = await redisError { try await client.leaseConnection(on: loop).get() }
                #expect(error?.code == .poolExhausted)
                held.release()
                let again = try await client.leaseConnection(on: loop).get()
                #expect(try await again.send(RedisCommand("PING")).get() == .simpleString("PONG"))
                again.release()
            }
        }
    }

    @Test("EVALSHA loads the script again after SCRIPT FLUSH; script errors pass through")
    func evalshaAfterFlush() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url) { client, _ in
                let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
                let exists = RedisCommand("SCRIPT", "EXISTS", .string(script.sha1))
                #expect(try await client.send(exists) == .array([.integer(0)]))
                #expect(try await client.evaluate(script, keys: ["sold"], arguments: [5]).int == 5)
                #expect(try await client.send(exists) == .array([.integer(1)]))
                _ = try await client.send("SCRIPT", "FLUSH")
                #expect(try await client.send(exists) == .array([.integer(0)]))
                #expect(try await client.evaluate(script, keys: ["sold"], arguments: [5]).int == 10)
                #expect(try await client.send(exists) == .array([.integer(1)]))

                let failing = RedisScript("return redis.error_reply('SOLDOUT no tickets left')")
                let error = await redisError { try await client.evaluate(failing) }
                #expect(error?.code == .serverError)
                #expect(error?.serverErrorPrefix == "SOLDOUT")
            }
        }
    }

    @Test("server errors fail their command; in a pipeline they stay in place")
    func serverErrors() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url) { client, _ in
                let error = await redisError { try await client.send("NOSUCHCOMMAND", "x") }
                #expect(error?.code == .serverError)
                #expect(error?.message.contains("unknown command") == true)
                #expect(error?.command == "NOSUCHCOMMAND x")
                let replies = try await client.pipeline([
                    RedisCommand("SET", "a", "1"), RedisCommand("LPUSH", "a", "x"), RedisCommand("GET", "a"),
                ])
                #expect(replies.count == 3)
                #expect(replies[0] == .simpleString("OK"))
                let inPlace = #expect(throws: RedisError.self) { try replies[1].throwingServerError() }
                #expect(inPlace?.serverErrorPrefix == "WRONGTYPE")
                #expect(try replies[0].throwingServerError() == .simpleString("OK"))
                #expect(replies[2].string == "1")
            }
        }
    }

    @Test("a command past its timeout fails with timeout; the late reply is not misdelivered")
    func timeoutAgainstDebugSleep() async throws {
        try await withRedisServer { server in
            try await withClient(url: server.url, configure: {
                $0.commandTimeout = .milliseconds(100)
                // This test is about deadlines and reply order; the breaker has its own test.
                $0.circuitBreaker = .init(failureThreshold: 1_000)
            }) { client, group in
                let loop = group.next()
                _ = try await client.send("SET", "k", "v")
                let (sleeping, queued) = try await loop.submit {
                    (client.send(RedisCommand("DEBUG", "SLEEP", "0.6"), on: loop), client.send(RedisCommand("GET", "k"), on: loop))
                }.get()
                let sleepError = await redisError { try await sleeping.get() }
                #expect(sleepError?.code == .timeout)
                #expect(sleepError?.command == "DEBUG SLEEP 0.6")
                let queuedError = await redisError { try await queued.get() }
                #expect(queuedError?.code == .timeout)

                // Once Redis wakes up, the two late replies are dropped and every new command
                // gets its own reply.
                var answer: RESPValue?
                let woke = try await eventually {
                    answer = try? await client.send("GET", "k")
                    return answer != nil
                }
                #expect(woke)
                #expect(answer?.string == "v")
                #expect(try await client.send("INCR", "n") == .integer(1))
            }
        }
    }

    @Test("Redis killed mid-pipeline: every pending command fails with connectionClosed; restarted, the client reconnects")
    func killedMidPipelineThenRestarted() async throws {
        let server = try await RedisServerProcess.start()
        defer { server.stop() }
        try await withClient(url: server.url, configure: {
            $0.commandTimeout = .seconds(30)
            $0.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(200))
        }) { client, group in
            let loop = group.next()
            _ = try await client.send("SET", "k", "before")
            let pending = try await loop.submit {
                [client.send(RedisCommand("DEBUG", "SLEEP", "5"), on: loop)]
                    + (0..<100).map { _ in client.send(RedisCommand("GET", "k"), on: loop) }
            }.get()
            try await Task.sleep(for: .milliseconds(200))  // let Redis start sleeping; not an assertion
            server.kill()

            var codes: [RedisError.Code] = []
            for future in pending {
                codes.append(await redisError { try await future.get() }?.code ?? .serverError)
            }
            #expect(codes.count == 101)
            #expect(codes.allSatisfy { $0 == .connectionClosed }, "\(Set(codes.map(\.description)))")

            let whileDown = await redisError { try await client.send("PING") }
            #expect(whileDown != nil)

            try await server.restart()
            var reply: RESPValue?
            let reconnected = try await eventually(attempts: 400) {
                reply = try? await client.send("PING")
                return reply != nil
            }
            #expect(reconnected)
            #expect(reply == .simpleString("PONG"))
            _ = try await client.send("SET", "k", "after")
            #expect(try await client.send("GET", "k").string == "after")
        }
    }

    @Test("while Redis is down the circuit breaker opens and commands fail fast with circuitOpen")
    func circuitOpensWhileDown() async throws {
        let server = try await RedisServerProcess.start()
        defer { server.stop() }
        try await withClient(url: server.url, configure: {
            $0.commandTimeout = .milliseconds(500)
            $0.circuitBreaker = .init(failureThreshold: 3, openDuration: .seconds(30))
            $0.reconnectBackoff = .init(initial: .milliseconds(5), maximum: .milliseconds(20))
        }) { client, _ in
            _ = try await client.send("PING")
            server.kill()
            var seen: [RedisError.Code] = []
            for _ in 0..<200 {
                guard let error = await redisError({ try await client.send("PING") }) else {
                    Issue.record("PING succeeded with Redis killed")
                    break
                }
                seen.append(error.code)
                if error.code == .circuitOpen {
                    #expect(error.message.contains("failing fast"))
                    break
                }
            }
            #expect(seen.last == .circuitOpen, "codes seen: \(seen.map(\.description))")
            #expect(seen.dropLast().allSatisfy { [.connectionRefused, .connectionClosed, .timeout].contains($0) })
            #expect(await client.circuitPhases().contains(.open))
        }
    }

    @Test("AUTH with an ACL user and SELECT run on connect; a wrong password is refused clearly")
    func authAndSelect() async throws {
        try await withRedisServer(arguments: [
            "--requirepass", "topsecret", "--user", "alice", "on", ">alice pw", "~*", "&*", "+@all",
        ]) { server in
            let port = server.port
            try await withClient(url: "redis://alice:alice%20pw@127.0.0.1:\(port)/3") { client, _ in
                _ = try await client.send("SET", "in-db-3", "yes")
                #expect(try await client.send("ACL", "WHOAMI").string == "alice")
            }
            try await withClient(url: "redis://:topsecret@127.0.0.1:\(port)/0") { client, _ in
                #expect(try await client.send("GET", "in-db-3").isNull)
                let inDB3 = try await client.withConnection { connection in
                    _ = try await connection.send(RedisCommand("SELECT", 3))
                    return try await connection.send(RedisCommand("GET", "in-db-3"))
                }
                #expect(inDB3.string == "yes")
            }
            try await withClient(url: "redis://alice:wrong@127.0.0.1:\(port)") { client, _ in
                let error = await redisError { try await client.connect() }
                #expect(error?.code == .connectionRefused)
                #expect(error?.message.contains("refused AUTH") == true)
                #expect(error?.message.contains("WRONGPASS") == true)
                #expect(error?.message.contains("wrong") == false, "the password must not be echoed")
            }
        }
    }

    @Test("unix socket URLs work, SELECT included")
    func unixSocket() async throws {
        try await withRedisServer(.unixSocket) { server in
            try await withClient(url: server.url + "?db=2") { client, _ in
                _ = try await client.send("SET", "via", "unix")
                #expect(try await client.send("GET", "via").string == "unix")
                let info = try await client.send("CLIENT", "INFO").string ?? ""
                #expect(info.contains("db=2"), "\(info)")
            }
        }
    }
}

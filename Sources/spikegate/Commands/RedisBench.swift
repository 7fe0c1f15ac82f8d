import ArgumentParser
import GateCore
import GateRedis
import Logging
import NIOCore
import NIOPosix

/// `spikegate bench redis`: pipelined SET/GET and WATCH-transaction throughput of `GateRedis`.
///
/// Shaped like `redis-benchmark -c C -P P`: C workers, each keeping a batch of P commands in
/// flight and sending the next batch when the last reply of the previous one is in. Every loop
/// stops after `--duration` seconds. Prints one line per test, `name ops/s`, for the Makefile's
/// script to compare with `redis-benchmark` run against the same server.
struct RedisBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis",
        abstract: "Pipelined SET/GET and WATCH … EXEC throughput of SpikeGate's Redis client."
    )

    @Option(help: "Redis URL (redis://host:port/db or unix:///path).")
    var url = "redis://127.0.0.1:6379"

    @Option(help: "Concurrent workers (as redis-benchmark -c).")
    var concurrency = 50

    @Option(help: "Commands per batch for SET/GET (as redis-benchmark -P).")
    var pipeline = 16

    @Option(help: "Seconds each test runs.")
    var duration = 5.0

    @Option(help: "Event-loop threads of the client.")
    var threads = 1

    @Option(help: "Tests to run, comma-separated: set, get, watch.")
    var tests = "set,get,watch"

    func validate() throws {
        guard self.concurrency > 0, self.pipeline > 0, self.threads > 0 else {
            throw ValidationError("--concurrency, --pipeline and --threads must be positive")
        }
        guard self.duration > 0, self.duration <= 600 else {
            throw ValidationError("--duration must be between 0 and 600 seconds")
        }
    }

    func run() async throws {
        var configuration = try RedisConfiguration(url: self.url)
        configuration.commandTimeout = .seconds(5)
        configuration.acquireTimeout = .seconds(5)
        configuration.exclusiveConnectionsPerLoop = self.concurrency
        try await RedisClient.withClient(configuration: configuration, threads: self.threads) { client, group in
            try await client.connect()
            for test in self.tests.split(separator: ",") {
                let opsPerSecond: Double
                switch test {
                case "set":
                    opsPerSecond = try await self.runBatches(client: client, group: group) { worker, index in
                        RedisCommand("SET", .string("bench:key:\(worker):\(index)"), "xxx")
                    }
                case "get":
                    opsPerSecond = try await self.runBatches(client: client, group: group) { worker, index in
                        RedisCommand("GET", .string("bench:key:\(worker):\(index)"))
                    }
                case "watch":
                    opsPerSecond = try await self.runTransactions(client: client, group: group)
                default:
                    throw ValidationError("unknown test '\(test)' (known: set, get, watch)")
                }
                print("\(test) \(Int(opsPerSecond))")
            }
        }
    }

    /// Runs `concurrency` workers on the event loops, each sending batches back to back.
    private func runBatches(
        client: RedisClient,
        group: MultiThreadedEventLoopGroup,
        command: @escaping @Sendable (Int, Int) -> RedisCommand
    ) async throws -> Double {
        let start = NIODeadline.now()
        let end = start + .nanoseconds(Int64(self.duration * 1e9))
        let batchSize = self.pipeline
        var workers: [EventLoopFuture<Int>] = []
        var loops = group.makeIterator()
        for worker in 0..<self.concurrency {
            let loop = loops.next() ?? group.next()
            if worker % self.threads == self.threads - 1 {
                loops = group.makeIterator()
            }
            let batch = (0..<batchSize).map { command(worker, $0) }
            workers.append(loop.flatSubmit {
                Self.loopBatches(client: client, loop: loop, batch: batch, end: end, done: 0)
            })
        }
        var total = 0
        for worker in workers {
            total += try await worker.get()
        }
        let elapsed = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        return Double(total) / elapsed
    }

    private static func loopBatches(
        client: RedisClient,
        loop: any EventLoop,
        batch: [RedisCommand],
        end: NIODeadline,
        done: Int
    ) -> EventLoopFuture<Int> {
        client.pipeline(batch, on: loop).flatMap { replies in
            let completed = done + replies.count
            if NIODeadline.now() >= end {
                return loop.makeSucceededFuture(completed)
            }
            return Self.loopBatches(client: client, loop: loop, batch: batch, end: end, done: completed)
        }
    }

    /// `concurrency` workers on the event loops, each running optimistic-lock transactions on
    /// its own key: `WATCH k` + `GET k` in one write, then `MULTI; SET k v+1; EXEC` in another —
    /// two round trips, the shape of the gateway's in-flight flag. Counts committed ones; an
    /// aborted one (impossible without contention) is reported as an error.
    private func runTransactions(client: RedisClient, group: MultiThreadedEventLoopGroup) async throws -> Double {
        let start = NIODeadline.now()
        let end = start + .nanoseconds(Int64(self.duration * 1e9))
        var workers: [EventLoopFuture<Int>] = []
        for worker in 0..<self.concurrency {
            let loop = group.next()
            let key = "bench:tx:\(worker)"
            workers.append(loop.flatSubmit {
                Self.loopTransactions(client: client, loop: loop, key: key, end: end, done: 0)
            })
        }
        var committed = 0
        for worker in workers {
            committed += try await worker.get()
        }
        let elapsed = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        return Double(committed) / elapsed
    }

    private static func loopTransactions(
        client: RedisClient,
        loop: any EventLoop,
        key: String,
        end: NIODeadline,
        done: Int
    ) -> EventLoopFuture<Int> {
        client.leaseConnection(forKey: key, on: loop).flatMap { connection in
            connection.pipeline([RedisCommand("WATCH", .string(key)), RedisCommand("GET", .string(key))])
                .flatMap { replies in
                    let current = replies.last?.int ?? 0
                    return connection.transaction([RedisCommand("SET", .string(key), .integer(current + 1))])
                }
                .always { _ in connection.release() }
        }.flatMapThrowing { result -> Int in
            guard case .committed = result else {
                throw RedisError(code: .serverError, message: "a transaction on an uncontended key aborted")
            }
            return done + 1
        }.flatMap { completed in
            if NIODeadline.now() >= end {
                return loop.makeSucceededFuture(completed)
            }
            return Self.loopTransactions(client: client, loop: loop, key: key, end: end, done: completed)
        }
    }
}

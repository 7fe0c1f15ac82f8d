@testable import GateProxy
import GateRedis
import GateRules
import GateTestSupport
import NIOCore
import NIOPosix
import Testing

/// The batched in-flight flags against a real Redis: many accounts asked for in one event-loop
/// tick go out as one script call or one `WATCH` transaction, each with its own answer.
@Suite struct RedisFlagStoreTests {
    static let batchedStores: [InFlightPolicy.Store] = [.watch, .lua]

    /// Asks for the flags of `accounts` (tokens from `firstToken` on) in one tick of `loop`.
    private static func acquireInOneTick(
        _ store: RedisFlagStore, _ accounts: [String], firstToken: UInt64, mode: InFlightPolicy.Store, on loop: any EventLoop
    ) async throws -> [Bool] {
        let futures = try await loop.submit {
            accounts.enumerated().map { index, account in
                store.acquire(account, token: firstToken + UInt64(index), ttl: .seconds(30), store: mode, on: loop)
            }
        }.get()
        var taken: [Bool] = []
        for future in futures {
            taken.append(try await future.get())
        }
        return taken
    }

    /// The test's client: the default 50 ms command deadline is a gateway's; on a machine busy
    /// with the rest of the suite a batch may wait longer than that, and these tests are about
    /// answers, not time.
    private static func configuration(_ redis: RedisServerProcess) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: redis.url)
        configuration.commandTimeout = .seconds(10)
        configuration.acquireTimeout = .seconds(10)
        return configuration
    }

    private static func keyCount(_ client: RedisClient) async throws -> Int64 {
        try await client.send("DBSIZE").int ?? -1
    }

    /// How many times Redis ran `command` (its `INFO commandstats` line).
    private static func calls(of command: String, _ client: RedisClient) async throws -> Int {
        let info = try await client.send("INFO", "commandstats").string ?? ""
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_\(command):calls=") {
            return Int(line.dropFirst("cmdstat_\(command):calls=".count).prefix { $0.isNumber }) ?? -1
        }
        return 0
    }

    @Test(arguments: batchedStores)
    func aBatchTakesFreeFlagsRefusesHeldOnesAndGivesBackOnlyItsOwn(mode: InFlightPolicy.Store) async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        try await RedisClient.withClient(configuration: try Self.configuration(redis)) { client, group in
            let loop = group.next()
            let store = RedisFlagStore(client: client, instance: "a", batchLimit: 16)
            try await store.loadScripts()
            // Another gateway holds bob's flag.
            _ = try await client.send("SET", "spikegate:inflight:{bob}", "other:7", "PX", 60_000)
            let accounts = (0..<40).map { "user\($0)" } + ["bob"]
            let first = try await Self.acquireInOneTick(store, accounts, firstToken: 1, mode: mode, on: loop)
            #expect(first == Array(repeating: true, count: 40) + [false])
            // 41 accounts in batches of at most 16: three round trips' worth of commands.
            #expect(try await Self.calls(of: mode == .watch ? "watch" : "evalsha", client) == 3)
            #expect(try await Self.keyCount(client) == 41)
            #expect(try await client.send("GET", "spikegate:inflight:{user3}").string == "a:4")
            #expect(try await client.send("PTTL", "spikegate:inflight:{user3}").int ?? 0 > 20_000)

            // The same accounts again (new requests): all held now.
            let second = try await Self.acquireInOneTick(store, accounts, firstToken: 100, mode: mode, on: loop)
            #expect(second == Array(repeating: false, count: 41))

            // Giving back in one tick: our 40 go; bob's (another owner's) and a stale token stay.
            let releases = try await loop.submit {
                (0..<40).map { index in
                    store.release("user\(index)", token: UInt64(index + 1), on: loop)
                } + [store.release("bob", token: 41, on: loop)]
            }.get()
            for release in releases {
                try await release.get()
            }
            #expect(try await Self.keyCount(client) == 1)
            #expect(try await client.send("GET", "spikegate:inflight:{bob}").string == "other:7")
        }
    }

    @Test(arguments: batchedStores)
    func anAccountTwiceInOneBatchIsTakenOnce(mode: InFlightPolicy.Store) async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        try await RedisClient.withClient(configuration: try Self.configuration(redis)) { client, group in
            let store = RedisFlagStore(client: client, instance: "a")
            let taken = try await Self.acquireInOneTick(store, ["carol", "dave", "carol"], firstToken: 1, mode: mode, on: group.next())
            #expect(taken == [true, true, false])
            #expect(try await client.send("GET", "spikegate:inflight:{carol}").string == "a:1")
        }
    }

    /// Two gateways (two stores, two event loops) asking for the same 300 accounts at once:
    /// every flag goes to exactly one of them — `WATCH` aborts split the batches until each
    /// race is decided key by key.
    @Test(arguments: batchedStores)
    func twoGatewaysRacingForTheSameAccountsEachWinADisjointShare(mode: InFlightPolicy.Store) async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        try await RedisClient.withClient(configuration: try Self.configuration(redis), threads: 2) { client, group in
            let loops = [group.next(), group.next()]
            let stores = [RedisFlagStore(client: client, instance: "a"), RedisFlagStore(client: client, instance: "b")]
            let accounts = (0..<300).map { "acct\($0)" }
            for round in 0..<5 {
                async let first = Self.acquireInOneTick(stores[0], accounts, firstToken: 1, mode: mode, on: loops[0])
                async let second = Self.acquireInOneTick(stores[1], accounts.reversed(), firstToken: 1, mode: mode, on: loops[1])
                let (a, b) = try await (first, Array(second.reversed()))
                for index in accounts.indices {
                    #expect(a[index] != b[index], "round \(round): \(accounts[index]) taken by \(a[index] ? "both" : "neither")")
                }
                #expect(try await Self.keyCount(client) == 300)
                _ = try await client.send("FLUSHALL")
            }
        }
    }
}

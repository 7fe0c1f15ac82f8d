import GateCore
import GateRedis
import GateTestSupport
import NIOCore
import NIOPosix
import Testing
import TicketNode

/// Runs `body` with a real redis-server and `stores` SaleStores on it, each with its own client
/// (as separate nodes would have), all for sale `sale`.
func withSaleStores<Result: Sendable>(
    count stores: Int = 1,
    sale: String = "test",
    serverArguments: [String] = [],
    _ body: ([SaleStore], RedisServerProcess) async throws -> Result
) async throws -> Result {
    try await withRedisServer(arguments: serverArguments) { server in
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var clients: [RedisClient] = []
        do {
            var configuration = try RedisConfiguration(url: server.url)
            configuration.commandTimeout = .seconds(5)
            let made = try (0..<stores).map { _ -> SaleStore in
                let client = RedisClient(configuration: configuration, eventLoopGroup: group)
                clients.append(client)
                return try SaleStore(redis: client, sale: sale)
            }
            let result = try await body(made, server)
            for client in clients {
                await client.shutdown()
            }
            try await group.shutdownGracefully()
            return result
        } catch {
            for client in clients {
                await client.shutdown()
            }
            try await group.shutdownGracefully()
            throw error
        }
    }
}

@Suite("SaleStore against a real redis-server", .timeLimit(.minutes(2)))
struct SaleStoreTests {
    @Test("2,000 accounts at once for 500 tickets: exactly 500 reserved, each to a distinct account")
    func neverOversells() async throws {
        try await withSaleStores(count: 4) { stores, _ in
            try await stores[0].initialize(tickets: 500, payTimeout: .seconds(600), force: false)
            let outcomes = try await withThrowingTaskGroup(of: (String, PurchaseOutcome).self) { group in
                for account in 0..<2_000 {
                    let store = stores[account % stores.count]
                    group.addTask {
                        ("acct-\(account)", try await store.buy(account: "acct-\(account)", node: "n\(account % 4)"))
                    }
                }
                var all: [(String, PurchaseOutcome)] = []
                for try await outcome in group {
                    all.append(outcome)
                }
                return all
            }
            let winners = outcomes.compactMap { account, outcome -> (String, String)? in
                if case .reserved(let order, _, _, _) = outcome {
                    return (account, order)
                }
                return nil
            }
            let soldOut = outcomes.filter { if case .soldOut = $0.1 { return true } else { return false } }
            #expect(winners.count == 500)
            #expect(soldOut.count == 1_500)
            #expect(Set(winners.map(\.0)).count == 500, "an account won twice")
            #expect(Set(winners.map(\.1)).count == 500, "an order id was reused")
            let status = try await stores[0].status()
            #expect(status.sold == 500)
            #expect(status.remaining == 0)
            #expect(status.orders == 500, "every sold ticket has exactly one order record")
        }
    }

    @Test("one ticket per account: a second purchase answers the order already held")
    func oneTicketPerAccount() async throws {
        try await withSaleStores { stores, _ in
            let store = stores[0]
            try await store.initialize(tickets: 10, payTimeout: .seconds(600), force: false)
            guard case .reserved(let order, 1, 10, _) = try await store.buy(account: "alice", node: "n1") else {
                Issue.record("the first purchase did not reserve")
                return
            }
            #expect(try await store.buy(account: "alice", node: "n2") == .alreadyHolds(order: order))
            #expect(try await store.status().sold == 1)
        }
    }

    @Test("paying: once, twice, someone else's, unknown")
    func payment() async throws {
        try await withSaleStores { stores, _ in
            let store = stores[0]
            try await store.initialize(tickets: 10, payTimeout: .seconds(600), force: false)
            guard case .reserved(let order, _, _, _) = try await store.buy(account: "bob", node: "n1") else {
                Issue.record("no reservation")
                return
            }
            #expect(try await store.pay(order: order, account: "eve") == .notYourOrder)
            #expect(try await store.pay(order: order, account: "bob") == .paid)
            #expect(try await store.pay(order: order, account: "bob") == .alreadyPaid)
            #expect(try await store.pay(order: "99999", account: "bob") == .noSuchOrder)
            let status = try await store.status()
            #expect(status.paid == 1 && status.sold == 1 && status.reserved == 0)
            let record = try await store.order(id: order) ?? ""
            #expect(record.contains("\"status\":\"paid\""), "\(record)")
            #expect(record.contains("\"account\":\"bob\""))
        }
    }

    @Test("unpaid reservations expire back to stock; the accounts may buy again; paying late fails")
    func expiryReturnsStock() async throws {
        try await withSaleStores { stores, _ in
            let store = stores[0]
            try await store.initialize(tickets: 5, payTimeout: .milliseconds(200), force: false)
            var orders: [String] = []
            for account in 0..<5 {
                if case .reserved(let order, _, _, _) = try await store.buy(account: "a\(account)", node: "n") {
                    orders.append(order)
                }
            }
            #expect(orders.count == 5)
            #expect(try await store.buy(account: "late", node: "n") == .soldOut(sold: 5, total: 5))
            var returned = 0
            let allBack = try await eventually {
                returned += try await store.reap()
                return returned == 5
            }
            #expect(allBack)
            #expect(try await store.status().sold == 0)
            #expect(try await store.pay(order: orders[0], account: "a0") == .expired)
            guard case .reserved = try await store.buy(account: "a0", node: "n") else {
                Issue.record("an account whose reservation expired could not buy again")
                return
            }
            // Nothing is returned twice: the old reservations are gone, and the new one is either
            // still held or (on a slow machine, past its 200 ms) returned once.
            let again = try await store.reap()
            #expect(again <= 1, "nothing is returned twice")
            #expect(try await store.status().sold == 1 - again)
        }
    }

    @Test("three nodes reaping at once return every expired ticket exactly once")
    func concurrentReapers() async throws {
        try await withSaleStores(count: 3) { stores, _ in
            try await stores[0].initialize(tickets: 300, payTimeout: .milliseconds(100), force: false)
            for account in 0..<300 {
                _ = try await stores[account % 3].buy(account: "r\(account)", node: "n\(account % 3)")
            }
            #expect(try await stores[0].status().sold == 300)
            // Every reservation past its expiry by Redis's clock before any reaper starts.
            let redis = stores[0].redis
            let expiryKey = stores[0].keys.expiry
            let allExpired = try await eventually {
                let time = try await redis.send("TIME").array ?? []
                let now = (time.first?.int ?? 0) * 1_000 + (time.last?.int ?? 0) / 1_000
                return try await redis.send("ZCOUNT", .string(expiryKey), "-inf", .integer(now)).int == 300
            }
            #expect(allExpired)
            let returned = try await withThrowingTaskGroup(of: Int.self) { group in
                for store in stores {
                    group.addTask {
                        var total = 0
                        while true {
                            let batch = try await store.reap(limit: 7)
                            if batch == 0 {
                                return total
                            }
                            total += batch
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(returned == 300)
            #expect(try await stores[0].status().sold == 0)
        }
    }

    @Test("init refuses to overwrite a sale with sold tickets unless forced; ids are never reused")
    func initRefusesOverwrite() async throws {
        try await withSaleStores { stores, _ in
            let store = stores[0]
            try await store.initialize(tickets: 3, payTimeout: .seconds(60), force: false)
            try await store.initialize(tickets: 4, payTimeout: .seconds(60), force: false)
            guard case .reserved(let first, _, 4, _) = try await store.buy(account: "x", node: "n") else {
                Issue.record("no reservation")
                return
            }
            let refused = await #expect(throws: SaleError.self) {
                try await store.initialize(tickets: 10, payTimeout: .seconds(60), force: false)
            }
            #expect(refused?.code == .saleInProgress)
            #expect(try await store.status().total == 4)
            try await store.initialize(tickets: 10, payTimeout: .seconds(60), force: true)
            #expect(try await store.status().sold == 0)
            guard case .reserved(let second, _, 10, _) = try await store.buy(account: "x", node: "n") else {
                Issue.record("no reservation after a forced re-init")
                return
            }
            #expect(first != second)
            try await store.reset()
            let gone = await #expect(throws: SaleError.self) { try await store.status() }
            #expect(gone?.code == .noSuchSale)
        }
    }

    @Test("a sale that was never initialised, and a bad sale id, are clear errors")
    func missingAndInvalid() async throws {
        try await withSaleStores(sale: "never") { stores, _ in
            let error = await #expect(throws: SaleError.self) { try await stores[0].buy(account: "a", node: "n") }
            #expect(error?.code == .noSuchSale)
            #expect(error?.message.contains("spikegate sale init") == true)
            let bad = #expect(throws: SaleError.self) { try SaleStore(redis: stores[0].redis, sale: "a}b") }
            #expect(bad?.code == .invalidSale)
        }
    }
}

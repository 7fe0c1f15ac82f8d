import Foundation
import GateCore
import GateRedis
import GateTestSupport
import NIOCore
import NIOPosix
import Testing
import TicketNode

/// An outcome without its expiry time (the two stores' clocks differ by a few milliseconds).
private func comparable(_ outcome: PurchaseOutcome) -> String {
    switch outcome {
    case .reserved(let order, let sold, let total, _): "reserved \(order) \(sold)/\(total)"
    case .soldOut(let sold, let total): "sold out \(sold)/\(total)"
    case .alreadyHolds(let order): "holds \(order)"
    case .unconfirmed(let order, let acknowledged, let required): "unconfirmed \(order) \(acknowledged)/\(required)"
    }
}

/// An order record's fields other than its times.
private func fields(_ record: String?) throws -> [String: String] {
    guard let record else {
        return [:]
    }
    let object = try #require(try JSONSerialization.jsonObject(with: Data(record.utf8)) as? [String: Any], "\(record)")
    #expect(Set(object.keys).isSuperset(of: ["account", "node", "created", "expires", "status"]), "\(record)")
    return ["account": "\(object["account"] ?? "")", "node": "\(object["node"] ?? "")", "status": "\(object["status"] ?? "")"]
}

/// Runs `body` with a one-thread event loop group, shut down after it.
private func withGroup<Result: Sendable>(_ body: (MultiThreadedEventLoopGroup) async throws -> Result) async throws -> Result {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    do {
        let result = try await body(group)
        try await group.shutdownGracefully()
        return result
    } catch {
        try? await group.shutdownGracefully()
        throw error
    }
}

@Suite("The in-process sale store", .timeLimit(.minutes(2)))
struct MemorySaleStoreTests {
    @Test("answers 2,000 random purchases, payments and lookups exactly as the Redis scripts do")
    func sameAnswersAsRedis() async throws {
        try await withSaleStores { stores, _ in
            let redis = stores[0]
            try await redis.initialize(tickets: 40, payTimeout: .seconds(600), force: false)
            try await withGroup { group in
            let memory = try MemorySaleStore(sale: "test", tickets: 40, payTimeout: .seconds(600), group: group)
            var random = SystemRandomNumberGenerator()
            var orders: [(id: String, account: String)] = []
            var kinds: Set<String> = []
            for _ in 0..<2_000 {
                let account = "acct-\(Int.random(in: 0..<100, using: &random))"
                switch Int.random(in: 0..<4, using: &random) {
                case 0, 1:
                    let node = "n\(Int.random(in: 1...4, using: &random))"
                    let expected = try await redis.buy(account: account, node: node)
                    let got = try await memory.buy(account: account, node: node)
                    #expect(comparable(got) == comparable(expected))
                    kinds.insert(String(comparable(got).prefix(4)))
                    if case .reserved(let id, _, _, _) = got {
                        orders.append((id, account))
                    }
                case 2:
                    // The owner, a stranger, or an order that does not exist.
                    let order = orders.randomElement(using: &random) ?? ("1", account)
                    let payer = Bool.random(using: &random) ? order.account : account
                    let id = Int.random(in: 0..<10, using: &random) == 0 ? "9999" : order.id
                    let expected = try await redis.pay(order: id, account: payer)
                    #expect(try await memory.pay(order: id, account: payer) == expected)
                    kinds.insert("\(expected)")
                default:
                    let id = orders.randomElement(using: &random)?.id ?? "1"
                    #expect(try fields(try await memory.order(id: id)) == (try fields(try await redis.order(id: id))))
                }
            }
            #expect(kinds.isSuperset(of: ["rese", "sold", "hold", "paid", "alreadyPaid", "noSuchOrder", "notYourOrder"]), "\(kinds)")
            #expect(try await memory.status() == (try await redis.status()))
            }
        }
    }

    @Test("expiry: reservations come back to stock through reap and through a late payment, as in Redis")
    func expiryAsInRedis() async throws {
        try await withSaleStores { stores, _ in
            let redis = stores[0]
            try await redis.initialize(tickets: 3, payTimeout: .milliseconds(200), force: false)
            try await withGroup { group in
            let memory = try MemorySaleStore(sale: "test", tickets: 3, payTimeout: .milliseconds(200), group: group)
            let stores: [any TicketStore] = [redis, memory]
            for store in stores {
                for account in ["a", "b", "c"] {
                    _ = try await store.buy(account: account, node: "n")
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            for store in stores {
                #expect(try await store.pay(order: "1", account: "a") == .expired, "\(type(of: store))")
                #expect(try await store.reap(limit: 1) == 1, "\(type(of: store)): the limit holds")
                #expect(try await store.reap(limit: 10) == 1, "\(type(of: store))")
                #expect(try await store.status().sold == 0, "\(type(of: store))")
                #expect(try fields(try await store.order(id: "3"))["status"] == "expired")
            }
            }
        }
    }

    @Test("4 nodes in one process weighted 1:2:3:4 on one store, 2,000 tickets, 4,000 accounts trying twice: exactly 2,000 sold")
    func fourNodesInProcess() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let store = try MemorySaleStore(sale: "concert", tickets: 2_000, payTimeout: .seconds(600), group: group)
        var nodes: [TicketNodeServer] = []
        do {
            for (index, share) in [200, 400, 600, 800].enumerated() {
                nodes.append(try await TicketNodeServer.start(
                    configuration: TicketNodeConfiguration(port: 0, sale: "concert", name: "node-\(index + 1)", localStock: share),
                    store: store,
                    group: group
                ))
            }
            let outcome = try await runSale(accounts: 4_000, attempts: 2, nodes: nodes, weights: [1, 2, 3, 4], group: group)
            #expect(outcome.won.count == 2_000)
            #expect(Set(outcome.won.values).count == 2_000, "an order id was handed out twice")
            #expect(outcome.errors == 0)
            let ledger = store.snapshot
            #expect(ledger.status.sold == 2_000 && ledger.status.orders == 2_000)
            #expect(ledger.liveOrdersByAccount.count == 2_000)
        } catch {
            for node in nodes {
                try? await node.stop()
            }
            try? await group.shutdownGracefully()
            throw error
        }
        for node in nodes {
            try? await node.stop()
        }
        try await group.shutdownGracefully()
    }

    @Test("a node refuses a store holding another sale, and the store refuses bad sales")
    func mismatches() async throws {
        try await withGroup { group in
        let store = try MemorySaleStore(sale: "demo", tickets: 5, payTimeout: .seconds(1), group: group)
        let error = await #expect(throws: SaleError.self) {
            _ = try await TicketNodeServer.start(
                configuration: TicketNodeConfiguration(port: 0, sale: "other", name: "n", localStock: 5), store: store, group: group
            )
        }
        #expect(error?.description.contains("'other'") == true && error?.description.contains("'demo'") == true, "\(String(describing: error))")
        #expect(throws: SaleError.self) { try MemorySaleStore(sale: "a}b", tickets: 5, payTimeout: .seconds(1), group: group) }
        #expect(throws: SaleError.self) { try MemorySaleStore(sale: "ok", tickets: 0, payTimeout: .seconds(1), group: group) }
        #expect(throws: SaleError.self) { try MemorySaleStore(sale: "ok", tickets: 5, payTimeout: .zero, group: group) }
        }
    }
}

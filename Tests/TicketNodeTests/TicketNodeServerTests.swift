import GateCore
import GateRedis
import GateTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
import TicketNode

/// Runs `body` with a real redis-server, a sale of `tickets`, and one ticket node per share.
func withTicketNodes<Result: Sendable>(
    tickets: Int,
    shares: [Int],
    buffer: Double = 0.2,
    payTimeout: Duration = .seconds(600),
    refreshInterval: Duration = .milliseconds(100),
    redisArguments: [String] = [],
    _ body: ([TicketNodeServer], SaleStore, MultiThreadedEventLoopGroup, RedisServerProcess) async throws -> Result
) async throws -> Result {
    try await withRedisServer(arguments: redisArguments) { server in
        var configuration = try RedisConfiguration(url: server.url)
        configuration.commandTimeout = .seconds(5)
        return try await RedisClient.withClient(configuration: configuration, threads: 2) { redis, group in
            let store = try SaleStore(redis: redis, sale: "concert")
            try await store.initialize(tickets: tickets, payTimeout: payTimeout, force: false)
            var nodes: [TicketNodeServer] = []
            do {
                for (index, share) in shares.enumerated() {
                    nodes.append(try await TicketNodeServer.start(
                        configuration: TicketNodeConfiguration(
                            port: 0, sale: "concert", name: "node-\(index + 1)", localStock: share, buffer: buffer,
                            reapInterval: .milliseconds(100), refreshInterval: refreshInterval
                        ),
                        redis: redis,
                        group: group
                    ))
                }
                let result = try await body(nodes, store, group, server)
                for node in nodes {
                    try? await node.stop()
                }
                return result
            } catch {
                for node in nodes {
                    try? await node.stop()
                }
                throw error
            }
        }
    }
}

@Suite("Ticket node over HTTP", .timeLimit(.minutes(3)))
struct TicketNodeServerTests {
    @Test("the API: buy, one per account, pay, order, stock, health, and clear errors")
    func api() async throws {
        try await withTicketNodes(tickets: 10, shares: [10]) { nodes, _, group, _ in
            let http = try await HTTPTestConnection.connect(port: nodes[0].port, group: group)
            let anonymous = try await http.request(.POST, "/buy/ticket")
            #expect(anonymous.status == 400)
            #expect(anonymous.body.contains("missing X-Account-Id"))

            let bought = try await http.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "alice")])
            #expect(bought.status == 200)
            #expect(bought.body.hasPrefix("{\"code\":1,\"msg\":\"success\",\"order\":\""), "\(bought.body)")
            #expect(bought.header("X-Ticket-Node") == "node-1")
            let order = bought.body.split(separator: "\"").dropLast().last.map(String.init) ?? ""

            let again = try await http.request(.GET, "/buy/ticket", headers: [("X-Account-Id", "alice")])
            #expect(again.body.hasPrefix("{\"code\":-2,"), "\(again.body)")

            let stranger = try await http.request(.POST, "/orders/\(order)/pay", headers: [("X-Account-Id", "mallory")])
            #expect(stranger.status == 403)
            let paid = try await http.request(.POST, "/orders/\(order)/pay", headers: [("X-Account-Id", "alice")])
            #expect(paid.status == 200 && paid.body.contains("\"code\":1"))
            let record = try await http.request(.GET, "/orders/\(order)")
            #expect(record.body.contains("\"status\":\"paid\"") && record.body.contains("\"node\":\"node-1\""), "\(record.body)")
            #expect(try await http.request(.GET, "/orders/424242").status == 404)

            let stock = try await http.request(.GET, "/stock")
            #expect(stock.body.contains("\"total\":10,\"sold\":1,\"paid\":1,\"reserved\":0,\"remaining\":9"), "\(stock.body)")
            #expect(try await http.request(.GET, "/health").status == 200)
            #expect(try await http.request(.GET, "/nowhere").status == 404)
            #expect(try await http.request(.DELETE, "/buy/ticket").status == 405)
            let tooLong = try await http.request(.POST, "/buy/ticket", headers: [("X-Account-Id", String(repeating: "a", count: 200))])
            #expect(tooLong.status == 400)
            await http.close()
        }
    }

    @Test("a node whose share is used up answers sold out from memory, then reopens while stock remains")
    func localShareThenRefresh() async throws {
        // The periodic refresher is kept out of the way (1 h) so each step is deterministic.
        try await withTicketNodes(tickets: 10, shares: [2], buffer: 0, refreshInterval: .seconds(3600)) { nodes, store, group, _ in
            let http = try await HTTPTestConnection.connect(port: nodes[0].port, group: group)
            for account in ["a", "b"] {
                let response = try await http.request(.POST, "/buy/ticket", headers: [("X-Account-Id", account)])
                #expect(response.body.contains("\"code\":1"))
            }
            // The share is gone: answered locally, Redis untouched.
            #expect(nodes[0].stock.isClosed)
            let local = try await http.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "c")])
            #expect(local.body == "{\"code\":-1,\"msg\":\"sold out\"}")
            #expect(try await store.status().sold == 2)
            // Eight tickets remain globally: a refresh reopens the node for exactly those eight.
            try await nodes[0].refreshStock()
            var sold = 2
            for account in 0..<8 {
                let response = try await http.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "later-\(account)")])
                if response.body.contains("\"code\":1") {
                    sold += 1
                }
            }
            #expect(sold == 10)
            let after = try await http.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "too-late")])
            #expect(after.body == "{\"code\":-1,\"msg\":\"sold out\"}")
            let status = try await store.status()
            #expect(status.sold == 10 && status.remaining == 0)
            await http.close()
        }
    }

    @Test("4 nodes weighted 1:2:3:4, 10,000 tickets, 20,000 accounts each trying twice: exactly 10,000 sold to distinct accounts")
    func fourNodeSale() async throws {
        try await withTicketNodes(tickets: 10_000, shares: [1_000, 2_000, 3_000, 4_000]) { nodes, store, group, _ in
            let outcome = try await runSale(accounts: 20_000, attempts: 2, nodes: nodes, weights: [1, 2, 3, 4], group: group)
            #expect(outcome.won.count == 10_000)
            #expect(Set(outcome.won.values).count == 10_000, "an order id was handed out twice")
            #expect(outcome.errors == 0)
            let status = try await store.status()
            #expect(status.sold == 10_000)
            #expect(status.orders == 10_000, "reservations must equal tickets sold")
            #expect(status.remaining == 0)
        }
    }

    @Test("a node stopped mid-sale: the others still sell all the tickets (buffer, then refresh)")
    func nodeLostMidSale() async throws {
        try await withTicketNodes(tickets: 2_000, shares: [200, 400, 600, 800]) { nodes, store, group, _ in
            // The first wave reaches every node; then node 4 (the largest share) goes away.
            let first = try await runSale(accounts: 1_000, attempts: 1, nodes: nodes, weights: [1, 2, 3, 4], group: group)
            try await nodes[3].stop()
            let second = try await runSale(
                accounts: 4_000, attempts: 3, nodes: Array(nodes.prefix(3)), weights: [1, 2, 3], group: group, accountPrefix: "wave2"
            )
            #expect(first.errors == 0 && second.errors == 0)
            #expect(first.won.count + second.won.count == 2_000)
            let status = try await store.status()
            #expect(status.sold == 2_000 && status.remaining == 0)
        }
    }
}

/// redis-server with every write in the AOF before it answers: nothing acknowledged is lost.
private let durableRedis = ["--appendonly", "yes", "--appendfsync", "always"]

@Suite("Ticket node sale under faults", .timeLimit(.minutes(3)))
struct TicketNodeFaultTests {
    @Test("every reservation expires: the stock comes back whole and sells again")
    func expiredReservationsSellAgain() async throws {
        try await withTicketNodes(tickets: 1_000, shares: [250, 250, 250, 250], payTimeout: .milliseconds(300)) { nodes, store, group, _ in
            // The pay timeout is shorter than a wave, so tickets may expire and sell again within
            // it: every bound below holds whatever the timing.
            let first = try await runSale(accounts: 2_000, attempts: 1, nodes: nodes, weights: [1, 1, 1, 1], group: group)
            #expect(first.won.count >= 1_000, "the whole stock sells")
            // Nobody pays: the nodes' reapers return every ticket.
            let back = try await eventually(attempts: 500) { try await store.status().sold == 0 }
            #expect(back, "the reservations were not returned to stock")
            for node in nodes {
                try await node.refreshStock()
            }
            let second = try await runSale(
                accounts: 2_000, attempts: 2, nodes: nodes, weights: [1, 1, 1, 1], group: group, accountPrefix: "second"
            )
            #expect(second.won.count >= 1_000, "the returned stock sells again (no undersell)")
            #expect(first.errors == 0 && second.errors == 0)
            let status = try await store.status()
            #expect(status.sold <= 1_000, "never more than the stock reserved at once")
            // Under load a wave outlasts the pay timeout, so an account may win, lose it to
            // expiry and win again: every purchase answered is one order, no more, no less.
            #expect(status.orders == first.purchases + second.purchases, "one order per purchase answered")
        }
    }

    @Test("Redis killed between two waves of a sale, AOF with fsync always: nothing lost, no oversell after it returns")
    func redisRestartWithAOF() async throws {
        try await withTicketNodes(
            tickets: 3_000,
            shares: [750, 750, 750, 750],
            redisArguments: durableRedis
        ) { nodes, store, group, server in
            let before = try await runSale(accounts: 1_500, attempts: 1, nodes: nodes, weights: [1, 1, 1, 1], group: group)
            #expect(before.won.count == 1_500)
            try await server.restart()
            // The first answer after the restart (the client's breaker may still refuse a few
            // commands while Redis loads the AOF).
            var sold: Int?
            let reloaded = try await eventually {
                sold = try? await store.status().sold
                return sold != nil
            }
            #expect(reloaded)
            #expect(sold == 1_500, "the AOF must bring back every acknowledged sale")
            // Requests during the outage may fail (503); the clients re-dial on their own.
            let after = try await runSale(
                accounts: 4_000, attempts: 3, nodes: nodes, weights: [1, 1, 1, 1], group: group, accountPrefix: "after"
            )
            let status = try await store.status()
            #expect(status.sold == 3_000, "sold \(status.sold) of 3,000")
            #expect(before.won.count + after.won.count == 3_000, "every ticket sold once: \(before.won.count) + \(after.won.count)")
            #expect(status.orders == 3_000)
        }
    }

    @Test("Redis killed while the crowd buys, AOF with fsync always: no oversell, no undersell, one ticket per account")
    func redisKilledDuringTraffic() async throws {
        try await withTicketNodes(
            tickets: 3_000,
            shares: [750, 750, 750, 750],
            redisArguments: durableRedis
        ) { nodes, store, group, server in
            let wave = Task {
                try await runSale(accounts: 6_000, attempts: 2, nodes: nodes, weights: [1, 1, 1, 1], group: group, accountPrefix: "during")
            }
            let started = try await eventually(every: .milliseconds(5)) { try await store.status().sold >= 500 }
            #expect(started, "the sale never got going")
            try await server.restart()
            let during = try await wave.value
            let reloaded = try await eventually { (try? await store.status()) != nil }
            #expect(reloaded)
            // The crowd keeps coming (fresh accounts) until the stock is gone.
            let rest = try await sellOut(store: store, ports: nodes.map(\.port), weights: [1, 1, 1, 1], group: group) {
                for node in nodes {
                    try await node.refreshStock()
                }
            }
            let won = during.won.count + rest.won
            let status = try await store.status()
            #expect(status.sold == 3_000, "sold \(status.sold) of 3,000 after \(rest.waves) more waves (\(during.errors) errors while Redis was away)")
            #expect(status.orders == 3_000, "one order per ticket")
            let accounts = try await liveOrderAccounts(store)
            #expect(accounts.count == 3_000 && Set(accounts).count == 3_000, "no account holds two tickets")
            // A purchase whose answer was lost with Redis may still have sold: wins seen ≤ sold.
            #expect(won <= 3_000)
        }
    }
}

/// What a simulated crowd got.
struct SaleRun {
    /// Account → order, for every account that won.
    var won: [String: String] = [:]
    /// Answers that created an order (code 1). An account can win twice when its first
    /// reservation expired before its next attempt, so this can exceed `won.count`.
    var purchases = 0
    /// Transport errors and 5xx answers.
    var errors = 0
}

/// Fresh crowds (2,000 accounts, two attempts each) through the nodes on `ports` until the
/// sale's stock is gone, at most 20 waves; `beforeEachWave` runs first each time.
func sellOut(
    store: SaleStore,
    ports: [Int],
    weights: [Int],
    group: any EventLoopGroup,
    beforeEachWave: () async throws -> Void = {}
) async throws -> (won: Int, errors: Int, waves: Int) {
    var total = (won: 0, errors: 0, waves: 0)
    while try await store.status().remaining > 0, total.waves < 20 {
        try await beforeEachWave()
        let wave = try await runSale(
            accounts: 2_000, attempts: 2, ports: ports, weights: weights, group: group, accountPrefix: "wave-\(total.waves)"
        )
        total.won += wave.won.count
        total.errors += wave.errors
        total.waves += 1
    }
    return total
}

/// `accounts` distinct accounts buying through `nodes`; see `runSale(accounts:attempts:ports:…)`.
func runSale(
    accounts: Int,
    attempts: Int,
    nodes: [TicketNodeServer],
    weights: [Int],
    group: any EventLoopGroup,
    accountPrefix: String = "acct"
) async throws -> SaleRun {
    try await runSale(
        accounts: accounts, attempts: attempts, ports: nodes.map(\.port), weights: weights, group: group, accountPrefix: accountPrefix
    )
}

/// `accounts` distinct accounts buying through the nodes on `ports` (spread by `weights`, as a
/// weighted balancer would), each up to `attempts` times, 16 keep-alive connections per node.
/// A failed request (5xx, or the connection gone) counts as an error and the crowd goes on.
func runSale(
    accounts: Int,
    attempts: Int,
    ports: [Int],
    weights: [Int],
    group: any EventLoopGroup,
    accountPrefix: String = "acct"
) async throws -> SaleRun {
    let ring = weights.enumerated().flatMap { index, weight in Array(repeating: index, count: weight) }
    let connectionsPerNode = 16
    var connections: [[HTTPTestConnection]] = []
    for port in ports {
        var perNode: [HTTPTestConnection] = []
        for _ in 0..<connectionsPerNode {
            perNode.append(try await HTTPTestConnection.connect(port: port, group: group))
        }
        connections.append(perNode)
    }
    let lanes = ports.count * connectionsPerNode
    let pool = connections
    let run = try await withThrowingTaskGroup(of: SaleRun.self) { tasks in
        for lane in 0..<lanes {
            tasks.addTask {
                var result = SaleRun()
                var account = lane
                while account < accounts {
                    let node = ring[account % ring.count]
                    let http = pool[node][lane % connectionsPerNode]
                    let name = "\(accountPrefix)-\(account)"
                    for _ in 0..<attempts {
                        guard let response = try? await http.request(.POST, "/buy/ticket", headers: [("X-Account-Id", name)]) else {
                            result.errors += 1
                            continue
                        }
                        if response.status >= 500 {
                            result.errors += 1
                        } else if response.body.hasPrefix("{\"code\":1,") || response.body.hasPrefix("{\"code\":-2,") {
                            if response.body.hasPrefix("{\"code\":1,") {
                                result.purchases += 1
                            }
                            let order = response.body.split(separator: "\"").dropLast().last.map(String.init) ?? ""
                            result.won[name] = order
                        }
                    }
                    account += lanes
                }
                return result
            }
        }
        var total = SaleRun()
        for try await part in tasks {
            total.won.merge(part.won) { first, _ in first }
            total.purchases += part.purchases
            total.errors += part.errors
        }
        return total
    }
    for perNode in pool {
        for http in perNode {
            await http.close()
        }
    }
    return run
}

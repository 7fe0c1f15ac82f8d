import GateCore
import Foundation
import GateRedis
import GateTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
import TicketNode

/// Runs `body` with real `spikegate ticket-node` processes, one per share, on a sale of
/// `tickets` in a real redis-server; each is killed (SIGKILL) afterwards if still running.
func withTicketNodeProcesses<Result: Sendable>(
    tickets: Int,
    shares: [Int],
    extraArguments: [String] = [],
    _ body: ([SpikegateProcess], [Int], SaleStore, MultiThreadedEventLoopGroup, RedisServerProcess) async throws -> Result
) async throws -> Result {
    try await withRedisServer { server in
        var configuration = try RedisConfiguration(url: server.url)
        configuration.commandTimeout = .seconds(5)
        return try await RedisClient.withClient(configuration: configuration, threads: 2) { redis, group in
            let store = try SaleStore(redis: redis, sale: "live")
            try await store.initialize(tickets: tickets, payTimeout: .seconds(600), force: false)
            var processes: [SpikegateProcess] = []
            var ports: [Int] = []
            defer {
                for process in processes {
                    process.kill()
                }
            }
            for (index, share) in shares.enumerated() {
                let port = try freeLoopbackPort()
                processes.append(try SpikegateProcess.start([
                    "ticket-node", "--listen", "127.0.0.1:\(port)", "--redis", server.url, "--sale", "live",
                    "--local-stock", "\(share)", "--name", "proc-\(index + 1)", "--threads", "1",
                ] + extraArguments))
                ports.append(port)
            }
            for (process, port) in zip(processes, ports) {
                let up = try await eventually {
                    guard let probe = try? await HTTPTestConnection.connect(port: port, group: group) else {
                        return false
                    }
                    await probe.close()
                    return true
                }
                guard up else {
                    throw TestSupportError("ticket node on port \(port) never listened: \(process.printed)")
                }
            }
            return try await body(processes, ports, store, group, server)
        }
    }
}

/// The live orders' accounts (one record per ticket sold and not expired).
func liveOrderAccounts(_ store: SaleStore) async throws -> [String] {
    guard case .array(let records) = try await store.redis.send("HVALS", .string(store.keys.orders)) else {
        throw TestSupportError("HVALS of the orders did not answer an array")
    }
    var accounts: [String] = []
    for record in records {
        guard let text = record.string,
            let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        else {
            throw TestSupportError("an order record is not a JSON object: \(record)")
        }
        if object["status"] as? String != "expired", let account = object["account"] as? String {
            accounts.append(account)
        }
    }
    return accounts
}

@Suite("Ticket node processes", .timeLimit(.minutes(3)))
struct TicketNodeProcessTests {
    @Test("a node process killed (SIGKILL) mid-sale: the other nodes sell every ticket, each to one account")
    func nodeProcessKilled() async throws {
        try await withTicketNodeProcesses(
            tickets: 600, shares: [200, 200, 200], extraArguments: ["--buffer", "0.2", "--refresh-interval", "50ms"]
        ) { processes, ports, store, group, _ in
            // Wave 1 reaches all three nodes; node 3 dies while it runs (or just after).
            let wave = Task {
                try await runSale(accounts: 450, attempts: 1, ports: ports, weights: [1, 1, 1], group: group, accountPrefix: "w1")
            }
            let started = try await eventually(every: .milliseconds(5)) { try await store.status().sold >= 100 }
            #expect(started, "the first wave never got going")
            processes[2].kill()
            let first = try await wave.value
            // Later waves go to the two survivors, fresh accounts each time, until the stock is gone.
            let rest = try await sellOut(store: store, ports: Array(ports.prefix(2)), weights: [1, 1], group: group)
            #expect(rest.errors == 0, "the survivors must answer every request")
            let won = first.won.count + rest.won
            let status = try await store.status()
            #expect(status.sold == 600 && status.remaining == 0, "sold \(status.sold) of 600 after \(rest.waves) more waves")
            #expect(status.orders == 600, "every ticket has its order")
            let accounts = try await liveOrderAccounts(store)
            #expect(accounts.count == 600)
            #expect(Set(accounts).count == 600, "no account holds two tickets")
            // A purchase in flight on the killed node may have sold without its answer arriving.
            #expect(won <= 600 && won >= 600 - first.errors, "clients saw \(won) wins, \(first.errors) lost answers")
        }
    }

    @Test("SIGTERM drains: idle connections close, the purchase in flight is answered, the stat log has every request, exit 0")
    func gracefulDrain() async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("stat-\(UUID().uuidString.prefix(8)).log")
        defer { try? FileManager.default.removeItem(at: log) }
        try await withTicketNodeProcesses(
            tickets: 10, shares: [10], extraArguments: ["--stat-log", log.path, "--redis-timeout", "10s", "--drain-timeout", "10s"]
        ) { processes, ports, store, group, _ in
            let node = processes[0]
            let idle = try await HTTPTestConnection.connect(port: ports[0], group: group)
            #expect(try await idle.request(.GET, "/health").status == 200)
            let observer = try await HTTPTestConnection.connect(port: ports[0], group: group)
            // Writes (and so the purchase script) wait in Redis; reads still answer.
            _ = try await store.redis.send("CLIENT", "PAUSE", "4000", "WRITE")
            let buyer = try await HTTPTestConnection.connect(port: ports[0], group: group)
            let purchase = Task { try await buyer.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "in-flight")]) }
            // The node has taken the ticket from its share and waits on Redis.
            var polls = 0
            let inFlight = try await eventually(every: .milliseconds(5)) {
                polls += 1
                return try await observer.request(.GET, "/stock").body.contains("\"taken\":1")
            }
            #expect(inFlight)
            node.send(signal: SIGTERM)
            // The idle connections close at once; the purchase still gets its answer.
            try await idle.closed.get()
            try await observer.closed.get()
            let answer = try await purchase.value
            #expect(answer.status == 200 && answer.body.contains("\"code\":1"), "\(answer.body)")
            let status = try await node.waitForExit(timeout: .seconds(30))
            #expect(status == 0, "exit status \(String(describing: status)): \(node.printed)")
            await buyer.close()
            #expect(try await store.status().sold == 1)
            // health + every /stock poll + the purchase, one line each.
            let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 2 + polls, "\(lines.count) lines for \(2 + polls) requests")
            #expect(lines.filter { $0.contains("\"route\":\"stock\"") }.count == polls)
            let buy = lines.first { $0.contains("\"route\":\"buy\"") } ?? ""
            #expect(buy.contains("\"account\":\"in-flight\"") && buy.contains("\"result\":\"success\"") && buy.contains("\"local_sales\":1"), "\(buy)")
        }
    }
}

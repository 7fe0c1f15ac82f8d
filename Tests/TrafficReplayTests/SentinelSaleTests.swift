import Foundation
import GateCore
import GateRedis
import GateTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
import TrafficReplay

/// The sale behind Redis Sentinel (a primary, two replicas, three sentinels), with every
/// purchase and payment waiting for one replica's acknowledgement (`--min-replicas-ack 1`), and
/// the primary killed mid-sale.
@Suite("end to end behind Redis Sentinel", .serialized, .timeLimit(.minutes(5)))
struct SentinelSaleTests {
    static let tickets = 300

    @Test("the primary killed mid-sale: the sale resumes on the promoted replica, nothing oversold or twice to an account, every acknowledged purchase kept, every unconfirmed one resolved")
    func primaryKilledMidSale() async throws {
        let stack = try await SaleStack.start(
            tickets: Self.tickets, store: .sentinel, nodeArguments: ["--min-replicas-ack", "1", "--replica-ack-timeout", "200ms"]
        )
        defer { stack.stop() }
        let sentinel = try #require(stack.sentinel)
        var configuration = try RedisConfiguration(url: stack.redisURL)
        configuration.commandTimeout = .seconds(2)
        let meta = "{sale:\(SaleStack.sale)}:meta"

        async let first = stack.replay("rush.yaml")
        // Once tickets sell, the primary dies (SIGKILL); the sentinels promote a replica.
        let (soldAtKill, failedOver) = try await RedisClient.withClient(configuration: configuration) { client, _ in
            try await client.connect()
            let selling = try await eventually(attempts: 600, every: .milliseconds(50)) {
                (try await client.send("HGET", .string(meta), "sold").string.flatMap { Int($0) } ?? 0) >= 30
            }
            #expect(selling, "no ticket sold within 30 s")
            let sold = try await client.send("HGET", .string(meta), "sold").string.flatMap { Int($0) } ?? 0
            let old = sentinel.primary.port
            sentinel.primary.kill()
            let started = ContinuousClock.now
            let promoted = try await sentinel.waitForFailover(from: old)
            return (sold, (port: promoted, after: ContinuousClock.now - started))
        }
        let before = try await first
        // The same people again: those holding a ticket are told so, the rest buy what is left.
        let second = try await stack.replay("rush.yaml")

        // Every unconfirmed purchase or payment is settled by its node.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var settled: [String] = []
        for port in stack.nodePorts {
            let connection = try await HTTPTestConnection.connect(port: port, group: group)
            let resolved = try await eventually(attempts: 300, every: .milliseconds(100)) {
                try await connection.request(.GET, "/stock").body.contains("\"unconfirmed\":0")
            }
            let stock = try await connection.request(.GET, "/stock").body
            #expect(resolved, "node :\(port) still has unconfirmed writes: \(stock)")
            settled.append(stock)
            await connection.close()
        }
        try await group.shutdownGracefully()

        let audit = try await stack.audit()
        let sale = audit.summary(populations: second.report.populations, scenario: Scenario(name: "rush"))
        #expect(sale.oversold == 0)
        #expect(sale.accountsWithTwoTickets == 0)
        // The sale goes on on the promoted replica and sells out (600 people for 300 tickets).
        #expect(
            audit.status.sold == Self.tickets,
            "\(soldAtKill) sold at the kill, \(audit.status.sold) at the end\n\(before.printed)\n\(second.printed)"
        )
        #expect(soldAtKill < Self.tickets)
        // A purchase answered "bought" waited for a replica: the promoted one has it.
        let answeredBought = before.report.bought + second.report.bought
        #expect(answeredBought <= audit.status.sold, "\(answeredBought) answered bought, \(audit.status.sold) on the new primary")
        for (report, _, _) in [before, second] {
            for population in report.populations {
                #expect(population.accountsBoughtTwice == 0)
                // The outage is answered as such ("stock store unavailable", "no backend"), nothing unexplained.
                #expect(population.errors == 0, "\(population.name): \(population.problems)")
            }
        }
        let people = before.report.populations[0]
        print("sentinel sale: \(soldAtKill) of \(Self.tickets) sold when the primary was killed; fail-over in "
            + "\(failedOver.after) to :\(failedOver.port); first replay \(before.report.bought) bought, "
            + "\(people.storeUnavailable) 'store unavailable', \(people.noBackend) 'no backend', \(people.unconfirmed) unconfirmed; second replay \(second.report.bought) bought; "
            + "sold at the end \(audit.status.sold); nodes: \(settled.map { $0.split(separator: "{").last ?? "" }.joined(separator: " "))")
    }
}

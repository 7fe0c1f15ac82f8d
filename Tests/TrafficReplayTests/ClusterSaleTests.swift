import Foundation
import GateCore
import GateRedis
import GateTestSupport
import Testing
import TrafficReplay

/// The sale on a three-primary Redis Cluster: four ticket nodes and two gateways on it, the same
/// crowd pressing through both gateways at once, and the sale's slot moved to another primary
/// while it sells.
@Suite("end to end on a Redis Cluster", .serialized, .timeLimit(.minutes(5)))
struct ClusterSaleTests {
    static let tickets = 300

    @Test("one crowd through two gateways while the sale's slot migrates: sold out, no oversell, no account with two tickets, no error")
    func saleDuringResharding() async throws {
        let stack = try await SaleStack.start(tickets: Self.tickets, store: .cluster, gateways: 2)
        defer { stack.stop() }
        var configuration = try RedisConfiguration(url: stack.redisURL)
        configuration.commandTimeout = .seconds(5)
        let slot = RedisHashSlot.of("{sale:\(SaleStack.sale)}:meta")
        let cluster = try #require(stack.cluster)
        let source = try await cluster.owner(ofSlot: slot)
        let target = try #require(cluster.servers.map(\.port).first { $0 != source })

        // The same 600 accounts through both gateways at once (each replay its own process).
        async let first = stack.replay("rush.yaml", through: 0)
        async let second = stack.replay("rush.yaml", through: 1)
        // Once tickets sell, the sale's slot (all four of its keys) moves to another primary.
        let moved: Int = try await RedisClient.withClient(configuration: configuration) { client, _ in
            try await client.connect()
            let selling = try await eventually(attempts: 600, every: .milliseconds(50)) {
                let sold = try await client.send("HGET", .string("{sale:\(SaleStack.sale)}:meta"), "sold").string.flatMap { Int($0) } ?? 0
                return sold >= 20
            }
            #expect(selling, "no ticket sold within 30 s")
            let before = try await client.send("HGET", .string("{sale:\(SaleStack.sale)}:meta"), "sold").string.flatMap { Int($0) } ?? 0
            try await cluster.migrate(slot: slot, to: target)
            return before
        }
        let reports = try await [first, second]
        #expect(try await cluster.owner(ofSlot: slot) == target)
        #expect(moved < Self.tickets, "the slot moved after the sale was over: \(moved) sold before")

        let audit = try await stack.audit()
        let sale = audit.summary(populations: reports[0].report.populations, scenario: Scenario(name: "rush"))
        #expect(audit.status.sold == Self.tickets, "600 people for 300 tickets sell out")
        #expect(sale.oversold == 0)
        #expect(sale.accountsWithTwoTickets == 0)
        #expect(reports.reduce(0) { $0 + $1.report.bought } == Self.tickets, "each ticket answered as bought once")
        for (report, status, printed) in reports {
            #expect(status == 0, "\(printed)")
            for population in report.populations {
                #expect(population.errors == 0, "\(population.name): \(population.problems)")
                #expect(population.storeUnavailable + population.noBackend + population.unconfirmed == 0, "\(population.name) met an outage")
            }
        }
        print("cluster sale: \(moved) of \(Self.tickets) sold when the slot moved from :\(source) to :\(target); "
            + reports.map { "\($0.report.requests) requests, \($0.report.bought) bought" }.joined(separator: " / "))
    }
}

import Foundation
import GateCore
import GateRedis
import NIOCore
import TicketNode

/// The sale's own records, read from its store after a replay: what was sold and to whom. The
/// report's verdicts (oversold, accounts with two tickets, undersold, the real users' share)
/// come from here, not from what the clients were told.
public struct SaleAudit: Sendable, Hashable {
    public var status: SaleStatus
    /// Live orders (reserved or paid) by account.
    public var liveOrdersByAccount: [String: Int]

    /// The audit of a sale kept in this process (`MemorySaleStore`).
    public static func read(ledger: SaleLedger) -> SaleAudit {
        SaleAudit(status: ledger.status, liveOrdersByAccount: ledger.liveOrdersByAccount)
    }

    /// Reads sale `sale` from `redis`.
    public static func read(redis: RedisClient, sale: String) async throws -> SaleAudit {
        let store = try SaleStore(redis: redis, sale: sale)
        let status = try await store.status()
        let reply = try await redis.send(RedisCommand("HGETALL", arguments: [.string(store.keys.orders)])).get()
        var live: [String: Int] = [:]
        let values = reply.array ?? []
        var index = 1
        while index < values.count {
            if let record = values[index].string, let object = try? JSONSerialization.jsonObject(with: Data(record.utf8)) as? [String: Any],
                let account = object["account"] as? String, let state = object["status"] as? String, state == "reserved" || state == "paid"
            {
                live[account, default: 0] += 1
            }
            index += 2
        }
        return SaleAudit(status: status, liveOrdersByAccount: live)
    }

    /// The sale's part of the report, given the populations' outcomes.
    public func summary(populations: [ReplayReport.PopulationSummary], scenario: Scenario) -> ReplayReport.SaleSummary {
        let real = Set(scenario.populations.filter(\.real).map(\.name))
        var realTickets = 0
        for (account, orders) in self.liveOrdersByAccount {
            // Accounts are named POPULATION-INDEX.
            if let dash = account.lastIndex(of: "-"), real.contains(String(account[..<dash])) {
                realTickets += orders
            }
        }
        let liveOrders = self.liveOrdersByAccount.values.reduce(0, +)
        let realWithout = populations.filter(\.real).reduce(0) { $0 + $1.usersWithoutTicket }
        return ReplayReport.SaleSummary(
            stock: self.status.total,
            sold: self.status.sold,
            paid: self.status.paid,
            oversold: max(0, self.status.sold - self.status.total, liveOrders - self.status.total),
            accountsWithTwoTickets: self.liveOrdersByAccount.values.filter { $0 > 1 }.count,
            undersold: min(max(0, self.status.remaining), realWithout),
            realShare: liveOrders == 0 ? 0 : Double(realTickets) / Double(liveOrders)
        )
    }
}

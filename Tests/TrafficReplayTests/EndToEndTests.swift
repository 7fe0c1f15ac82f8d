import Foundation
import GateTestSupport
import Testing
import TrafficReplay

/// The shipped scenarios replayed against the whole system (real Redis, four ticket nodes
/// weighted 1–4, the gateway with TLS), as `make test` runs them: in the serial phase, after the
/// rest, on a machine they have to themselves.
@Suite("end to end: scenarios replayed through the gateway", .serialized, .timeLimit(.minutes(5)))
struct EndToEndTests {
    static let tickets = 300

    /// Runs `scenario` on a fresh stack with `spikegate replay`.
    static func replay(_ scenario: String) async throws -> ReplayReport {
        let stack = try await SaleStack.start(tickets: Self.tickets)
        defer { stack.stop() }
        let (report, status, printed) = try await stack.replay(scenario)
        print(printed)
        #expect(status == 0, "spikegate replay exited \(status): \(printed)")
        return report
    }

    @Test("mixed attack: no ticket oversold or twice to an account, real people win ≥ 95% while bots send ten times their requests, the 100-parallel bot gets one ticket per account at most, no unexplained error")
    func mixedAttack() async throws {
        let report = try await Self.replay("mixed-attack.yaml")
        let sale = try #require(report.sale)
        #expect(sale.oversold == 0)
        #expect(sale.accountsWithTwoTickets == 0)
        #expect(sale.sold == Self.tickets, "real demand (600) is twice the stock: every ticket goes")
        #expect(sale.undersold == 0)
        #expect(sale.realShare >= 0.95, "real users won \(sale.realShare)")
        let real = report.populations.filter(\.real).reduce(0) { $0 + $1.requests }
        let bots = report.populations.filter { !$0.real }.reduce(0) { $0 + $1.requests }
        #expect(bots >= 10 * real, "bots sent \(bots) requests, real users \(real)")
        let parallel = try #require(report.populations.first { $0.name == "parallel-bot" })
        #expect(parallel.bought <= parallel.users)
        #expect(parallel.inFlightRefused > 0, "the parallel bursts never met the in-flight flag")
        for population in report.populations {
            #expect(population.accountsBoughtTwice == 0, "\(population.name)")
            #expect(population.errors == 0, "\(population.name): \(population.problems)")
            #expect(population.storeUnavailable + population.noBackend + population.unconfirmed == 0, "\(population.name) met an outage")
        }
        // The bots that cannot read a CAPTCHA, and the banned ones, got nothing.
        for name in ["zombies", "hydra", "distributed"] {
            #expect(report.populations.first { $0.name == name }?.bought == 0, "\(name)")
        }
        #expect(report.usersCutShort == 0)
    }

    @Test("a rush of real people: every ticket sold, each to its own account, none oversold, every buyer paid")
    func rush() async throws {
        let report = try await Self.replay("rush.yaml")
        let sale = try #require(report.sale)
        let people = try #require(report.populations.first)
        #expect(sale.oversold == 0 && sale.accountsWithTwoTickets == 0)
        #expect(sale.sold == Self.tickets && sale.undersold == 0)
        #expect(people.bought == Self.tickets, "answers said bought \(people.bought) times")
        #expect(people.paid == people.bought, "\(people.problems)")
        #expect(sale.paid == sale.sold)
        #expect(people.errors == 0, "\(people.problems)")
        #expect(people.storeUnavailable + people.noBackend + people.unconfirmed == 0, "the rush met an outage")
        #expect(sale.realShare == 1)
    }

    @Test("a captured access log replays every request once, in time order, from the clients' addresses: the CAPTCHA gate challenges them all again and nothing is sold twice")
    func captureReplay() async throws {
        // Capture: the rush through one stack, its access log flushed by stopping the gateway.
        let first = try await SaleStack.start(tickets: Self.tickets)
        let captured: Capture
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("spikegate-capture-\(UUID().uuidString.prefix(8)).jsonl")
        defer { try? FileManager.default.removeItem(at: log) }
        do {
            let (report, status, printed) = try await first.replay("rush.yaml")
            #expect(status == 0, "\(printed)")
            #expect(report.sale?.sold == Self.tickets)
            first.gateway.send(signal: SIGTERM)
            _ = try await first.gateway.waitForExit(timeout: .seconds(15))
            try FileManager.default.copyItem(atPath: first.accessLog, toPath: log.path)
            captured = try Capture.load(path: log.path)
            first.stop()
        } catch {
            first.stop()
            throw error
        }
        #expect(captured.dropped == 0)
        let purchases = captured.requests.filter { $0.target == "/buy/ticket" }
        #expect(purchases.filter { $0.decision == "forwarded" }.count >= Self.tickets)

        // Replay at 4× speed against a fresh sale: every line sent once. The passes in the
        // capture are not replayed (the log has no headers), so the gate challenges every
        // purchase; payments of orders this sale never made find nothing.
        let second = try await SaleStack.start(tickets: Self.tickets)
        defer { second.stop() }
        let (report, status, printed) = try await second.replay(capture: log.path, speed: 4)
        #expect(status == 0, "\(printed)")
        #expect(report.requests == captured.requests.count, "\(printed)")
        let sale = try #require(report.sale)
        #expect(sale.oversold == 0 && sale.accountsWithTwoTickets == 0)
        #expect(sale.sold == 0, "a purchase without a pass passed the CAPTCHA gate")
        let replayedPurchases = report.populations.reduce(0) { $0 + $1.challenged }
        #expect(replayedPurchases == purchases.count, "\(printed)")
        // The rest (challenge images and solutions, payments) were answered, or shed.
        let others = report.populations.reduce(0) { $0 + $1.answered + $1.shed }
        #expect(others == captured.requests.count - purchases.count, "\(printed)")
        #expect(report.populations.allSatisfy { $0.errors == 0 }, "\(printed)")
    }
}

import Foundation
import GateTestSupport
import Testing
import TrafficReplay

#if canImport(Glibc)
import Glibc
#endif

/// `spikegate demo --exit` as an operator runs it, on a small crowd: with a private
/// redis-server (what `make demo` does) and with the in-process store (no redis-server).
@Suite("spikegate demo", .serialized, .timeLimit(.minutes(6)))
struct DemoTests {
    @Test("a small sale with attackers runs end to end and audits clean, with each store", arguments: ["memory", "redis"])
    func smallSale(store: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spikegate-demo-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let reportFile = directory.appendingPathComponent("report.json")
        let demo = try SpikegateProcess.start([
            "demo", "--store", store, "--users", "400", "--tickets", "40", "--ramp", "1s", "--attackers", "0.5",
            "--port", "0", "--admin-port", "0", "--exit", "--report", reportFile.path,
            "--rules", SaleStack.scenarios.appendingPathComponent("rules/sale.yaml").path,
        ])
        guard let status = try await demo.waitForExit(timeout: .seconds(240)) else {
            // SIGTERM first: the demo stops its child processes on it.
            demo.send(signal: SIGTERM)
            _ = try await demo.waitForExit(timeout: .seconds(10))
            Issue.record("the demo did not finish within 240 s: \(demo.printed.suffix(2_000))")
            demo.kill()
            return
        }
        let printed = demo.printed
        #expect(status == 0, "\(printed.suffix(3_000))")
        #expect(printed.contains(store == "memory" ? "is kept in this process" : "redis-server on 127.0.0.1:"), "\(printed.prefix(2_000))")
        #expect(printed.contains("dashboard: http://127.0.0.1:"))
        let data = try #require(FileManager.default.contents(atPath: reportFile.path), "no report: \(printed.suffix(3_000))")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let report = try decoder.decode(ReplayReport.self, from: data)
        let sale = try #require(report.sale)
        #expect(sale.stock == 40)
        #expect(sale.sold == 40, "400 people for 40 tickets sell out")
        #expect(sale.oversold == 0)
        #expect(sale.accountsWithTwoTickets == 0)
        #expect(report.populations.count == 6, "people and the five attacking populations")
        #expect(report.populations.reduce(0) { $0 + $1.errors } == 0, "\(report.populations.map { ($0.name, $0.problems) })")
        #expect(report.populations.reduce(0) { $0 + $1.storeUnavailable + $1.noBackend } == 0, "the demo met an outage")
        demo.kill()
    }
}

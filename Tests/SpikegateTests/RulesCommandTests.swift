import Foundation
import GateTestSupport
import Testing

@Suite("spikegate rules check")
struct RulesCommandTests {
    /// Writes `files` into a new temporary directory and runs `body` with its path.
    private func withRulesDirectory(_ files: [String: String], _ body: (String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rules-check-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (name, text) in files {
            try text.write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8)
        }
        try await body(directory)
    }

    @Test("good rules: a summary with counts and version on stdout, exit 0")
    func good() async throws {
        let files = [
            "10-upstreams.yaml": """
                trusted_proxies: [10.0.0.0/8]
                upstreams:
                  tickets:
                    backends:
                      - address: 127.0.0.1:8081
                  accounts:
                    backends:
                      - address: 127.0.0.1:8091
                """,
            "20-routes.yml": """
                routes:
                  - path: /buy/ticket
                    method: POST
                    upstream: tickets
                  - prefix: /orders/
                    upstream: tickets
                  - prefix: /accounts/
                    upstream: accounts
                """,
        ]
        try await self.withRulesDirectory(files) { directory in
            let output = try await SpikegateBinary.run(["rules", "check", directory])
            #expect(output.status == 0, "\(output.standardError)")
            let summary = output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(summary.hasPrefix("rules ok: 2 upstreams, 3 routes, 1 trusted proxy block, version "), "\(summary)")
            #expect(summary.split(separator: " ").last?.count == 12)
            #expect(output.standardError.isEmpty)
        }
    }

    @Test("bad rules: one line per problem on stderr with file:line:column and hint, exit 1")
    func bad() async throws {
        let files = [
            "upstreams.yaml": """
                upstreams:
                  tickets:
                    backends:
                      - address: 127.0.0.1:8081
                        weight: 0
                    health_check:
                      intervall: 2s
                routes:
                  - prefix: /
                    upstream: tikets
                """,
        ]
        try await self.withRulesDirectory(files) { directory in
            let output = try await SpikegateBinary.run(["rules", "check", directory])
            #expect(output.status == 1)
            #expect(output.standardOutput.isEmpty)
            let lines = output.standardError.split(separator: "\n").map(String.init)
            #expect(lines == [
                "\(directory)/upstreams.yaml:5:17: upstreams.tickets.backends[0].weight: 0 is out of range (hint: write a whole number from 1 to 1000)",
                "\(directory)/upstreams.yaml:7:7: upstreams.tickets.health_check.intervall: unknown key 'intervall' (hint: did you mean 'interval'?)",
                "\(directory)/upstreams.yaml:10:15: routes[0].upstream: no upstream is named 'tikets' (hint: did you mean 'tickets'?)",
                "rules not ok: 3 problems in \(directory)",
            ])
        }
    }

    @Test("a missing directory is refused with exit 1")
    func missing() async throws {
        let output = try await SpikegateBinary.run(["rules", "check", "/nonexistent/rules"])
        #expect(output.status == 1)
        #expect(output.standardError.contains("/nonexistent/rules: no such directory"))
    }
}

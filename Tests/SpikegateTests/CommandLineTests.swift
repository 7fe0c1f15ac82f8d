import Foundation
import GateCore
import GateTestSupport
import Testing

@Suite("spikegate command line")
struct CommandLineTests {
    @Test("--version prints the release")
    func version() async throws {
        let output = try await SpikegateBinary.run(["--version"])
        #expect(output.status == 0)
        #expect(output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == SpikeGateVersion.current)
    }

    @Test("--help describes the product and lists the subcommands")
    func help() async throws {
        let output = try await SpikegateBinary.run(["--help"])
        #expect(output.status == 0)
        #expect(output.standardOutput.contains("anti-cheat gateway for flash sales"))
        #expect(output.standardOutput.contains("bench"))
    }

    @Test("a bad option value is refused with a message and a non-zero exit")
    func badOption() async throws {
        let output = try await SpikegateBinary.run(["bench", "redis", "--concurrency", "0"])
        #expect(output.status != 0)
        #expect(output.standardError.contains("--concurrency, --pipeline and --threads must be positive"))
    }

    @Test("demo --store redis without a redis-server is refused with the way out")
    func demoWithoutRedis() async throws {
        let output = try await SpikegateBinary.run([
            "demo", "--store", "redis", "--redis-server", "/nonexistent/redis-server", "--port", "0", "--admin-port", "0", "--exit",
        ])
        #expect(output.status != 0)
        #expect(output.standardError.contains("cannot find /nonexistent/redis-server"), "\(output.standardError)")
        #expect(output.standardError.contains("--store memory"))
    }

    @Test("a bad Redis URL is refused with what is wrong")
    func badURL() async throws {
        let output = try await SpikegateBinary.run(["bench", "redis", "--url", "http://nowhere"])
        #expect(output.status != 0)
        #expect(output.standardError.contains("unknown scheme"))
    }
}

@Suite("spikegate sale", .timeLimit(.minutes(1)))
struct SaleCommandTests {
    @Test("init, status, a bad pay timeout, reset, status of a missing sale")
    func lifecycle() async throws {
        try await withRedisServer { server in
            let target = ["--redis", server.url, "--sale", "cli"]
            let created = try await SpikegateBinary.run(["sale", "init"] + target + ["--tickets", "100", "--pay-timeout", "90s"])
            #expect(created.status == 0, "\(created.standardError)")
            #expect(created.standardOutput.contains("100 tickets, pay timeout 90s"))

            let status = try await SpikegateBinary.run(["sale", "status"] + target)
            #expect(status.status == 0)
            #expect(status.standardOutput.contains("total      100"))
            #expect(status.standardOutput.contains("remaining  100"))

            let badTimeout = try await SpikegateBinary.run(["sale", "init"] + target + ["--tickets", "5", "--pay-timeout", "10"])
            #expect(badTimeout.status != 0)
            #expect(badTimeout.standardError.contains("has no unit"))

            let reset = try await SpikegateBinary.run(["sale", "reset"] + target)
            #expect(reset.status == 0)
            let missing = try await SpikegateBinary.run(["sale", "status"] + target)
            #expect(missing.status != 0)
            #expect(missing.standardError.contains("not initialised"))
        }
    }
}

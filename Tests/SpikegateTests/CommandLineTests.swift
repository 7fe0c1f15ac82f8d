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

    @Test("a bad Redis URL is refused with what is wrong")
    func badURL() async throws {
        let output = try await SpikegateBinary.run(["bench", "redis", "--url", "http://nowhere"])
        #expect(output.status != 0)
        #expect(output.standardError.contains("unknown scheme"))
    }
}

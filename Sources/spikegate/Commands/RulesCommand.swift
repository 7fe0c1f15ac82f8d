import ArgumentParser
import Foundation
import GateCore
import GateRules

/// `spikegate rules …`: work with rule files offline.
struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Check rule files before a gateway loads them.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compile a rules directory as the gateway would; print every problem, or a summary.",
            discussion: """
                Exits 0 when the rules compile, and prints what they hold and their version. \
                Otherwise prints one line per problem (file:line:column: key path: what is \
                wrong (hint: how to fix it)) to standard error and exits 1.
                """
        )

        @Argument(help: "The directory of *.yaml rule files.")
        var directory: String

        func run() throws {
            let rules: RuleSet
            do {
                rules = try RulesLoader.load(directory: self.directory)
            } catch {
                let count = error.diagnostics.count == 1 ? "1 problem" : "\(error.diagnostics.count) problems"
                let lines = error.diagnostics.map(\.description) + ["rules not ok: \(count) in \(self.directory)"]
                FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
                throw ExitCode.failure
            }
            print("rules ok: \(Self.count(rules.upstreams.count, "upstream")), \(Self.count(rules.routes.count, "route")), \(Self.count(rules.trustedProxies.blocks.count, "trusted proxy block")), version \(rules.version)")
        }

        /// `1 route`, `3 routes`.
        private static func count(_ number: Int, _ noun: String) -> String {
            number == 1 ? "1 \(noun)" : "\(number) \(noun)s"
        }
    }
}

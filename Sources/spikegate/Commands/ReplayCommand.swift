import ArgumentParser
import Foundation
import GateRedis
import NIOCore
import NIOPosix
import TicketNode
import TrafficReplay

/// `spikegate replay SCENARIO.yaml --target URL`: drives a scenario's populations against a
/// live gateway and prints the report.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a flash-sale scenario (or a captured access log) against a live gateway and report what each population got.",
        discussion: """
            Every user connects from its own source address (127.x.y.z: each is bindable on Linux, \
            so the gateway sees distinct clients). With --redis and --sale the report adds the \
            sale's own records: stock, sold, paid, oversold, accounts with two tickets, undersold \
            and the real users' share; the command fails (exit 1) if a ticket was oversold or an \
            account holds two.
            """
    )

    @Argument(help: "The scenario file (YAML; see Tests/Scenarios/).")
    var scenario: String?

    @Option(help: "Replay a captured access log (the gateway's access_log, JSON lines) instead of a scenario.")
    var capture: String?

    @Option(help: "With --capture: replay this many times faster than captured.")
    var speed = 1.0

    @Option(help: "Where to send the traffic: http://HOST:PORT or https://HOST:PORT.")
    var target: String

    @Option(help: "Also write the report as JSON to this file.")
    var report: String?

    @Option(help: "The sale's Redis, to audit the sale after the replay (with --sale).")
    var redis: String?

    @Option(help: "The sale id to audit (with --redis).")
    var sale: String?

    @Option(help: "PEM file of the CA (or self-signed certificate) an https target is checked against.")
    var caFile: String?

    @Flag(help: "Do not check an https target's certificate.")
    var insecure = false

    @Option(help: "The gateway's admin listener (http://HOST:PORT, with admin captcha_answers: true) that tells simulated people an image CAPTCHA's characters.")
    var captchaAnswers: String?

    @Option(help: "File holding the admin token, for --captcha-answers.")
    var adminTokenFile: String?

    @Option(help: "Event-loop threads for the client connections.")
    var threads = 2

    @Flag(help: "No progress line.")
    var quiet = false

    func validate() throws {
        guard (self.scenario == nil) != (self.capture == nil) else {
            throw ValidationError("give a scenario file or --capture ACCESS.jsonl (one of them)")
        }
        guard self.speed > 0, self.speed <= 1_000 else {
            throw ValidationError("--speed must be above 0 and at most 1000")
        }
        guard (self.redis == nil) == (self.sale == nil) else {
            throw ValidationError("--redis and --sale go together")
        }
        guard (1...64).contains(self.threads) else {
            throw ValidationError("--threads must be 1 to 64")
        }
    }

    func run() async throws {
        let target = try ReplayTarget(url: self.target)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.threads)
        let report: ReplayReport
        let auditFailure: (any Error)?
        do {
            try await self.checkSale()
            (report, auditFailure) = try await self.replay(at: target, group: group)
            try await group.shutdownGracefully()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        print(report.table())
        if let path = self.report {
            let json = try report.json()
            guard FileManager.default.createFile(atPath: path, contents: Data(json.utf8)) else {
                throw ValidationError("cannot write the report to \(path)")
            }
            print("report written to \(path)")
        }
        if let auditFailure {
            throw ValidationError("the replay ran, but the sale could not be audited: \(auditFailure)")
        }
        if let sale = report.sale, sale.oversold > 0 || sale.accountsWithTwoTickets > 0 {
            print("OVERSOLD or a second ticket for one account: stop and investigate")
            throw ExitCode(1)
        }
    }

    /// Rewrites the progress line on standard error.
    @Sendable static func showProgress(_ line: String) {
        FileHandle.standardError.write(Data(("\r" + line).utf8))
    }

    /// The audit's Redis, with a generous command timeout.
    private func auditConfiguration(_ redis: String) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: redis)
        configuration.commandTimeout = .seconds(10)
        return configuration
    }

    /// Before anything is sent: the sale to audit must exist (a wrong --sale or an unreachable
    /// Redis would otherwise be found only after the whole replay).
    private func checkSale() async throws {
        guard let redis = self.redis, let sale = self.sale else {
            return
        }
        do {
            _ = try await RedisClient.withClient(configuration: try self.auditConfiguration(redis)) { client, _ in
                try await client.connect()
                return try await SaleStore(redis: client, sale: sale).status()
            }
        } catch {
            throw ValidationError("cannot audit sale '\(sale)' at \(RedisConfiguration.redacted(redis)): \(error)")
        }
    }

    /// Runs the replay (a scenario or a capture), then audits the sale when asked to; an audit
    /// that fails leaves the report without its sale part and says why.
    private func replay(at target: ReplayTarget, group: any EventLoopGroup) async throws -> (ReplayReport, (any Error)?) {
        var report: ReplayReport
        var scenario = Scenario(name: "capture")
        if let capturePath = self.capture {
            let capture = try Capture.load(path: capturePath)
            let replayer = try CaptureReplayer(capture: capture, target: target, speed: self.speed, insecure: self.insecure, caFile: self.caFile, group: group)
            print("replaying \(capture.requests.count) captured requests at \(self.speed)× speed against \(target)")
            report = await replayer.run(progress: self.quiet ? nil : Self.showProgress)
        } else if let path = self.scenario {
            do {
                scenario = try ScenarioDecoder.load(path: path)
            } catch let error as ScenarioError {
                throw ValidationError("the scenario has problems:\n\(error.description)")
            }
            let token = try self.adminTokenFile.map { path in
                guard let text = try? String(contentsOfFile: path, encoding: .utf8), let line = text.split(whereSeparator: \.isNewline).first, !line.isEmpty else {
                    throw ValidationError("cannot read an admin token from \(path)")
                }
                return String(line).trimmingCharacters(in: .whitespaces)
            }
            let answers = try self.captchaAnswers.map { try CaptchaAnswers(url: $0, token: token, group: group) }
            let replayer = try Replayer(scenario: scenario, target: target, caFile: self.caFile, insecure: self.insecure, captchaAnswers: answers, group: group)
            print("replaying \(scenario.name): \(scenario.users) users in \(scenario.populations.count) populations against \(target)")
            report = await replayer.run(progress: self.quiet ? nil : Self.showProgress)
        } else {
            throw ValidationError("give a scenario file or --capture")
        }
        if !self.quiet {
            FileHandle.standardError.write(Data("\n".utf8))
        }
        if let redis = self.redis, let sale = self.sale {
            do {
                let audit = try await RedisClient.withClient(configuration: try self.auditConfiguration(redis)) { client, _ in
                    try await client.connect()
                    return try await SaleAudit.read(redis: client, sale: sale)
                }
                report.sale = audit.summary(populations: report.populations, scenario: scenario)
            } catch {
                return (report, error)
            }
        }
        return (report, nil)
    }
}

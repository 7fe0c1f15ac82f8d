import Foundation
import GateRedis
import GateTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import TrafficReplay

/// The whole system on loopback, as real processes: a `redis-server`, a sale in it, four
/// `spikegate ticket-node`s weighted 1:2:3:4 (each holding its weight's share of the stock), and
/// a `spikegate gateway` in front of them with TLS on its listener, the shipped scenario rules
/// (`Tests/Scenarios/rules/`) and an admin listener that tells CAPTCHA answers to the replay.
final class SaleStack: @unchecked Sendable {
    static let scenarios = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Scenarios")
    static let sale = "e2e"

    let redis: RedisServerProcess
    let nodes: [SpikegateProcess]
    let gateway: SpikegateProcess
    let port: Int
    let adminPort: Int
    private let directory: URL

    private init(redis: RedisServerProcess, nodes: [SpikegateProcess], gateway: SpikegateProcess, port: Int, adminPort: Int, directory: URL) {
        self.redis = redis
        self.nodes = nodes
        self.gateway = gateway
        self.port = port
        self.adminPort = adminPort
        self.directory = directory
    }

    /// The gateway's TLS listener.
    var target: ReplayTarget {
        get throws { try ReplayTarget(url: "https://127.0.0.1:\(self.port)") }
    }

    /// The gateway's access log, when the stack was started with one.
    var accessLog: String {
        self.directory.appendingPathComponent("access.jsonl").path
    }

    /// Starts everything for a sale of `tickets` and waits until the gateway is ready.
    static func start(tickets: Int) async throws -> SaleStack {
        let redis = try await RedisServerProcess.start()
        var nodes: [SpikegateProcess] = []
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spikegate-e2e-\(UUID().uuidString.prefix(8))")
        do {
            let initialized = try await SpikegateBinary.run(["sale", "init", "--redis", redis.url, "--sale", Self.sale, "--tickets", "\(tickets)", "--pay-timeout", "10m"])
            guard initialized.status == 0 else {
                throw ReplayError("sale init failed: \(initialized.standardError)")
            }
            var backends: [String] = []
            for weight in 1...4 {
                let port = try freeLoopbackPort()
                nodes.append(try SpikegateProcess.start([
                    "ticket-node", "--listen", "127.0.0.1:\(port)", "--redis", redis.url, "--sale", Self.sale,
                    "--local-stock", "\(tickets * weight / 10)", "--name", "node-\(weight)", "--threads", "1",
                ]))
                backends.append("      - {address: '127.0.0.1:\(port)', weight: \(weight)}")
            }
            let rules = directory.appendingPathComponent("rules")
            try FileManager.default.createDirectory(at: rules, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Self.scenarios.appendingPathComponent("rules/sale.yaml"), to: rules.appendingPathComponent("sale.yaml"))
            let upstreams = "upstreams:\n  tickets:\n    backends:\n\(backends.joined(separator: "\n"))\n"
                + "    health_check: {path: /health, interval: 1s, timeout: 1s}\n    slow_start: 0s\n"
            try upstreams.write(to: rules.appendingPathComponent("upstreams.yaml"), atomically: true, encoding: .utf8)
            let port = try freeLoopbackPort()
            let adminPort = try freeLoopbackPort()
            let configuration = """
                listeners:
                  - address: 127.0.0.1:\(port)
                    tls: self_signed
                admin:
                  address: 127.0.0.1:\(adminPort)
                  captcha_answers: true
                redis: \(redis.url)
                rules: \(rules.path)
                access_log: \(directory.appendingPathComponent("access.jsonl").path)

                """
            let configurationFile = directory.appendingPathComponent("gateway.yaml")
            try configuration.write(to: configurationFile, atomically: true, encoding: .utf8)
            let gateway = try SpikegateProcess.start(["gateway", "--config", configurationFile.path, "--threads", "2"])
            let stack = SaleStack(redis: redis, nodes: nodes, gateway: gateway, port: port, adminPort: adminPort, directory: directory)
            guard try await stack.awaitReady() else {
                let printed = gateway.printed
                stack.stop()
                throw ReplayError("the gateway never became ready: \(printed)")
            }
            return stack
        } catch {
            nodes.forEach { $0.kill() }
            redis.stop()
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// Waits (up to 20 s) for the admin listener's `/readyz` to say 200.
    private func awaitReady() async throws -> Bool {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { Task { try? await group.shutdownGracefully() } }
        return try await eventually(attempts: 400, every: .milliseconds(50)) {
            guard self.gateway.isRunning else {
                throw ReplayError("the gateway exited")
            }
            guard let connection = try? await HTTPTestConnection.connect(port: self.adminPort, group: group) else {
                return false
            }
            defer { Task { await connection.close() } }
            return (try? await connection.request(.GET, "/readyz").status) == 200
        }
    }

    /// The sale's own records.
    func audit() async throws -> SaleAudit {
        var configuration = try RedisConfiguration(url: self.redis.url)
        configuration.commandTimeout = .seconds(10)
        return try await RedisClient.withClient(configuration: configuration) { client, _ in
            try await client.connect()
            return try await SaleAudit.read(redis: client, sale: Self.sale)
        }
    }

    /// Replays the shipped scenario `name` against the gateway with `spikegate replay` (its own
    /// process, as an operator runs it), which audits the sale; its JSON report, and its exit
    /// status (1: a ticket oversold or an account holding two).
    func replay(_ name: String) async throws -> (report: ReplayReport, status: Int32, printed: String) {
        try await self.runReplay([
            Self.scenarios.appendingPathComponent(name).path, "--captcha-answers", "http://127.0.0.1:\(self.adminPort)",
        ])
    }

    /// Replays the capture at `path` against the gateway with `spikegate replay --capture`.
    func replay(capture path: String, speed: Double) async throws -> (report: ReplayReport, status: Int32, printed: String) {
        try await self.runReplay(["--capture", path, "--speed", "\(speed)"])
    }

    /// Runs `spikegate replay` with `arguments` and the stack's target, sale and a report file.
    private func runReplay(_ arguments: [String]) async throws -> (report: ReplayReport, status: Int32, printed: String) {
        let reportFile = self.directory.appendingPathComponent("report-\(UUID().uuidString.prefix(8)).json")
        let output = try await SpikegateBinary.run(["replay"] + arguments + [
            "--target", try self.target.description, "--insecure", "--redis", self.redis.url, "--sale", Self.sale,
            "--report", reportFile.path, "--quiet",
        ], timeout: .seconds(240))
        guard let data = FileManager.default.contents(atPath: reportFile.path) else {
            throw ReplayError("spikegate replay wrote no report (status \(output.status)): \(output.standardOutput) \(output.standardError)")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return (try decoder.decode(ReplayReport.self, from: data), output.status, output.standardOutput)
    }

    /// Stops every process and removes the files.
    func stop() {
        self.gateway.kill()
        self.nodes.forEach { $0.kill() }
        self.redis.stop()
        try? FileManager.default.removeItem(at: self.directory)
    }
}

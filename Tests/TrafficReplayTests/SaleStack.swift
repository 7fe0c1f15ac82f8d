import Foundation
import GateRedis
import GateTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import TrafficReplay

/// The whole system on loopback, as real processes: a `redis-server` (or a three-primary Redis
/// Cluster), a sale in it, four `spikegate ticket-node`s weighted 1:2:3:4 (each holding its
/// weight's share of the stock), and one or more `spikegate gateway`s in front of them with TLS
/// on their listeners, the shipped scenario rules (`Tests/Scenarios/rules/`) and admin
/// listeners that tell CAPTCHA answers to the replay.
final class SaleStack: @unchecked Sendable {
    static let scenarios = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Scenarios")
    static let sale = "e2e"

    /// One gateway process and its listeners.
    struct Gateway {
        let process: SpikegateProcess
        let port: Int
        let adminPort: Int
        let directory: URL

        /// Its TLS listener.
        var target: ReplayTarget {
            get throws { try ReplayTarget(url: "https://127.0.0.1:\(self.port)") }
        }

        /// Its access log.
        var accessLog: String {
            self.directory.appendingPathComponent("access.jsonl").path
        }
    }

    /// The Redis everything shares: a URL (`redis://` or `redis-cluster://`) and how to stop it.
    let redisURL: String
    /// What the stack's Redis is.
    enum Store {
        /// One redis-server.
        case single
        /// A three-primary Redis Cluster.
        case cluster
        /// A primary and two replicas behind three sentinels.
        case sentinel
    }

    /// The Redis Cluster, when the stack runs on one.
    let cluster: RedisClusterProcess?
    /// The Sentinel set-up, when the stack runs on one.
    let sentinel: RedisSentinelProcess?
    private let stopRedis: @Sendable () -> Void
    let nodes: [SpikegateProcess]
    /// The ticket nodes' ports, weights 1 to 4 in order.
    let nodePorts: [Int]
    let gateways: [Gateway]
    private let directory: URL

    /// The first gateway (the only one unless the stack was started with more).
    var gateway: SpikegateProcess {
        self.gateways[0].process
    }

    var port: Int {
        self.gateways[0].port
    }

    var adminPort: Int {
        self.gateways[0].adminPort
    }

    var target: ReplayTarget {
        get throws { try self.gateways[0].target }
    }

    var accessLog: String {
        self.gateways[0].accessLog
    }

    private init(
        redisURL: String,
        cluster: RedisClusterProcess?,
        sentinel: RedisSentinelProcess?,
        stopRedis: @escaping @Sendable () -> Void,
        nodes: [SpikegateProcess],
        nodePorts: [Int],
        gateways: [Gateway],
        directory: URL
    ) {
        self.nodePorts = nodePorts
        self.redisURL = redisURL
        self.cluster = cluster
        self.sentinel = sentinel
        self.stopRedis = stopRedis
        self.nodes = nodes
        self.gateways = gateways
        self.directory = directory
    }

    /// Starts everything for a sale of `tickets` on a fresh `store`, with `gateways` gateways
    /// (ticket nodes get `nodeArguments` too), and waits until each gateway is ready.
    static func start(tickets: Int, store: Store = .single, gateways gatewayCount: Int = 1, nodeArguments: [String] = []) async throws -> SaleStack {
        let redisURL: String
        let stopRedis: @Sendable () -> Void
        var clusterProcess: RedisClusterProcess?
        var sentinelProcess: RedisSentinelProcess?
        switch store {
        case .cluster:
            let redis = try await RedisClusterProcess.start()
            clusterProcess = redis
            (redisURL, stopRedis) = (redis.url, { redis.stop() })
        case .sentinel:
            let redis = try await RedisSentinelProcess.start()
            sentinelProcess = redis
            (redisURL, stopRedis) = (redis.url, { redis.stop() })
        case .single:
            let redis = try await RedisServerProcess.start()
            (redisURL, stopRedis) = (redis.url, { redis.stop() })
        }
        var nodes: [SpikegateProcess] = []
        var gateways: [Gateway] = []
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spikegate-e2e-\(UUID().uuidString.prefix(8))")
        do {
            let initialized = try await SpikegateBinary.run(["sale", "init", "--redis", redisURL, "--sale", Self.sale, "--tickets", "\(tickets)", "--pay-timeout", "10m"])
            guard initialized.status == 0 else {
                throw ReplayError("sale init failed: \(initialized.standardError)")
            }
            var backends: [String] = []
            var nodePorts: [Int] = []
            for weight in 1...4 {
                let port = try freeLoopbackPort()
                nodes.append(try SpikegateProcess.start([
                    "ticket-node", "--listen", "127.0.0.1:\(port)", "--redis", redisURL, "--sale", Self.sale,
                    "--local-stock", "\(tickets * weight / 10)", "--name", "node-\(weight)", "--threads", "1",
                ] + nodeArguments))
                nodePorts.append(port)
                backends.append("      - {address: '127.0.0.1:\(port)', weight: \(weight)}")
            }
            let rules = directory.appendingPathComponent("rules")
            try FileManager.default.createDirectory(at: rules, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Self.scenarios.appendingPathComponent("rules/sale.yaml"), to: rules.appendingPathComponent("sale.yaml"))
            let upstreams = "upstreams:\n  tickets:\n    backends:\n\(backends.joined(separator: "\n"))\n"
                + "    health_check: {path: /health, interval: 1s, timeout: 1s}\n    slow_start: 0s\n"
            try upstreams.write(to: rules.appendingPathComponent("upstreams.yaml"), atomically: true, encoding: .utf8)
            for index in 0..<gatewayCount {
                let own = directory.appendingPathComponent("gateway-\(index)")
                try FileManager.default.createDirectory(at: own, withIntermediateDirectories: true)
                let port = try freeLoopbackPort()
                let adminPort = try freeLoopbackPort()
                let configuration = """
                    listeners:
                      - address: 127.0.0.1:\(port)
                        tls: self_signed
                    admin:
                      address: 127.0.0.1:\(adminPort)
                      captcha_answers: true
                    redis: \(redisURL)
                    rules: \(rules.path)
                    access_log: \(own.appendingPathComponent("access.jsonl").path)

                    """
                let configurationFile = own.appendingPathComponent("gateway.yaml")
                try configuration.write(to: configurationFile, atomically: true, encoding: .utf8)
                let process = try SpikegateProcess.start(["gateway", "--config", configurationFile.path, "--threads", "2"])
                gateways.append(Gateway(process: process, port: port, adminPort: adminPort, directory: own))
            }
            let stack = SaleStack(
                redisURL: redisURL, cluster: clusterProcess, sentinel: sentinelProcess, stopRedis: stopRedis, nodes: nodes,
                nodePorts: nodePorts, gateways: gateways, directory: directory
            )
            for gateway in gateways {
                guard try await stack.awaitReady(gateway) else {
                    let printed = gateway.process.printed
                    stack.stop()
                    throw ReplayError("a gateway never became ready: \(printed)")
                }
            }
            return stack
        } catch {
            gateways.forEach { $0.process.kill() }
            nodes.forEach { $0.kill() }
            stopRedis()
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// Waits (up to 20 s) for `gateway`'s admin `/readyz` to say 200.
    private func awaitReady(_ gateway: Gateway) async throws -> Bool {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { Task { try? await group.shutdownGracefully() } }
        return try await eventually(attempts: 400, every: .milliseconds(50)) {
            guard gateway.process.isRunning else {
                throw ReplayError("the gateway exited")
            }
            guard let connection = try? await HTTPTestConnection.connect(port: gateway.adminPort, group: group) else {
                return false
            }
            defer { Task { await connection.close() } }
            return (try? await connection.request(.GET, "/readyz").status) == 200
        }
    }

    /// The sale's own records.
    func audit() async throws -> SaleAudit {
        var configuration = try RedisConfiguration(url: self.redisURL)
        configuration.commandTimeout = .seconds(10)
        return try await RedisClient.withClient(configuration: configuration) { client, _ in
            try await client.connect()
            return try await SaleAudit.read(redis: client, sale: Self.sale)
        }
    }

    /// Replays the shipped scenario `name` against gateway `gateway` with `spikegate replay`
    /// (its own process, as an operator runs it), which audits the sale; its JSON report, and its
    /// exit status (1: a ticket oversold or an account holding two).
    func replay(_ name: String, through gateway: Int = 0) async throws -> (report: ReplayReport, status: Int32, printed: String) {
        try await self.runReplay([
            Self.scenarios.appendingPathComponent(name).path, "--captcha-answers", "http://127.0.0.1:\(self.gateways[gateway].adminPort)",
        ], through: gateway)
    }

    /// Replays the capture at `path` against the first gateway with `spikegate replay --capture`.
    func replay(capture path: String, speed: Double) async throws -> (report: ReplayReport, status: Int32, printed: String) {
        try await self.runReplay(["--capture", path, "--speed", "\(speed)"], through: 0)
    }

    /// Runs `spikegate replay` with `arguments` and a gateway's target, the sale and a report file.
    private func runReplay(_ arguments: [String], through gateway: Int) async throws -> (report: ReplayReport, status: Int32, printed: String) {
        let reportFile = self.directory.appendingPathComponent("report-\(UUID().uuidString.prefix(8)).json")
        let output = try await SpikegateBinary.run(["replay"] + arguments + [
            "--target", try self.gateways[gateway].target.description, "--insecure", "--redis", self.redisURL, "--sale", Self.sale,
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
        self.gateways.forEach { $0.process.kill() }
        self.nodes.forEach { $0.kill() }
        self.stopRedis()
        try? FileManager.default.removeItem(at: self.directory)
    }
}

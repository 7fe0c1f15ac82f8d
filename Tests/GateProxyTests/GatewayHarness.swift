import Foundation
import GateCore
import GateProxy
import GateRules
import GateTestSupport
import Logging
import NIOCore
import NIOPosix

/// A real gateway on loopback in front of real `TestBackend`s, with its rule files written to a
/// temporary directory, for the duration of a test.
struct GatewayHarness {
    let group: MultiThreadedEventLoopGroup
    let backends: [TestBackend]
    let gateway: Gateway
    let rulesDirectory: URL

    /// The gateway's first listener port.
    var port: Int {
        self.gateway.ports[0]
    }

    /// The rule file text for an upstream `tickets` over `backends` with `weights`, routed
    /// for every path; `extra` is appended (e.g. `trusted_proxies`), `upstreamExtra` goes
    /// inside the upstream (health check, passive, slow start).
    static func rules(backends: [TestBackend], weights: [Int], upstreamExtra: String = "", routes: String = Self.everything, extra: String = "") -> String {
        var text = "upstreams:\n  tickets:\n    backends:\n"
        for (backend, weight) in zip(backends, weights) {
            text += "      - address: 127.0.0.1:\(backend.port)\n        weight: \(weight)\n"
        }
        text += upstreamExtra
        text += "routes:\n" + routes
        text += extra
        return text
    }

    /// One route sending every path to `tickets`.
    static let everything = "  - prefix: /\n    upstream: tickets\n"

    /// Starts `weights.count` backends and a gateway routing everything to them, runs `body`,
    /// and stops it all (also when `body` throws). `files` go into the rules directory beside
    /// the rule file (key and list files). Unless `awaitWarm` is false, `body` starts once the
    /// warm-up gate lets traffic in (or after 5 s).
    static func with<Result>(
        weights: [Int],
        upstreamExtra: String = "    slow_start: 0s\n",
        routes: String = Self.everything,
        extra: String = "",
        files: [String: String] = [:],
        threads: Int = 1,
        metrics: GatewayMetrics? = nil,
        awaitWarm: Bool = true,
        configure: (inout GatewayConfiguration) -> Void = { _ in },
        _ body: (GatewayHarness) async throws -> Result
    ) async throws -> Result {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        var backends: [TestBackend] = []
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spikegate-rules-\(UUID().uuidString)")
        var gateway: Gateway?
        do {
            for index in weights.indices {
                backends.append(try await TestBackend.start(name: "b\(index + 1)", group: group))
            }
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let text = Self.rules(backends: backends, weights: weights, upstreamExtra: upstreamExtra, routes: routes, extra: extra)
            try text.write(to: directory.appendingPathComponent("upstreams.yaml"), atomically: true, encoding: .utf8)
            for (name, content) in files {
                try content.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
            }
            let rules = try RulesLoader.load(directory: directory.path)
            var configuration = GatewayConfiguration()
            configuration.listeners = [Listener(endpoint: Endpoint(host: "127.0.0.1", port: 0))]
            configure(&configuration)
            var logger = Logger(label: "spikegate.gateway.test")
            logger.logLevel = .warning
            let started = try await Gateway.start(
                configuration: configuration, rules: rules, group: group, metrics: metrics ?? GatewayMetrics(), logger: logger
            )
            gateway = started
            if awaitWarm {
                // As a load balancer waits for /readyz: the warm-up gate opens once the first
                // health checks pass, which a busy machine may take longer to run than the
                // gateway's start waits for. Tests of dead backends go on after the bound.
                _ = try await eventually { started.warmupStatus().phase == .ready || started.warmupStatus().phase == .ramping }
            }
            let harness = GatewayHarness(group: group, backends: backends, gateway: started, rulesDirectory: directory)
            let result = try await body(harness)
            await harness.stop()
            return result
        } catch {
            await gateway?.shutdown(gracePeriod: .zero)
            for backend in backends {
                await backend.stop()
            }
            try? FileManager.default.removeItem(at: directory)
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func stop() async {
        await self.gateway.shutdown(gracePeriod: .zero)
        for backend in self.backends {
            await backend.stop()
        }
        try? FileManager.default.removeItem(at: self.rulesDirectory)
        try? await self.group.shutdownGracefully()
    }

    /// A new keep-alive connection to the gateway.
    func connect(from localAddress: String? = nil) async throws -> HTTPTestConnection {
        try await HTTPTestConnection.connect(port: self.port, from: localAddress, group: self.group)
    }

    /// Sends raw bytes to the gateway and collects what comes back until it closes.
    func raw(_ chunks: [[UInt8]], pause: TimeAmount = .zero, from localAddress: String? = nil, timeout: TimeAmount = .seconds(10)) async throws -> RawTCPExchange.Result {
        try await RawTCPExchange.send(chunks, pause: pause, port: self.port, from: localAddress, timeout: timeout, group: self.group)
    }

    /// Whether `connection` is closed (by the gateway) within `bound`; the bound only keeps a
    /// broken build from hanging the suite.
    func closes(_ connection: HTTPTestConnection, within bound: Duration = .seconds(10)) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                (try? await connection.closed.get()) != nil
            }
            group.addTask {
                try? await Task.sleep(for: bound)
                return false
            }
            let first = await group.next() ?? false
            if !first {
                // Lets the waiting child finish: a future's wait cannot be cancelled.
                await connection.close()
            }
            group.cancelAll()
            return first
        }
    }

    /// Raw bytes sent by all backends together on proxied (non-health-check) connections.
    var proxiedBytes: Int {
        self.backends.reduce(0) { $0 + $1.proxiedBytes }
    }
}

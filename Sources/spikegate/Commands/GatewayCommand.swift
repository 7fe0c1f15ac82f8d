import Foundation
import ArgumentParser
import CoreMetrics
import GateCore
import GateProxy
import GateRules
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// `spikegate gateway`: the anti-cheat gateway in front of the ticket nodes.
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Run the gateway: proxy to the upstreams of the rule files, with health checks and hard limits.",
        discussion: """
            Settings come from --config (YAML, see Deploy/gateway.yaml); the flags override the \
            essentials, so `spikegate gateway --listen 0.0.0.0:8080 --rules Rules/` starts without a file. \
            The rule files are watched and reloaded when they change (a bad edit keeps the old rules).
            """
    )

    @Option(help: "Gateway config file (YAML).")
    var config: String?

    @Option(help: "Address to listen on, HOST:PORT (replaces the config file's listeners).")
    var listen: [String] = []

    @Option(help: "Admin listener address, HOST:PORT.")
    var admin: String?

    @Option(help: "Redis URL (absent: state kept in this process).")
    var redis: String?

    @Option(help: "Directory of rule files (upstreams, routes, trusted proxies).")
    var rules: String?

    @Option(help: "Event-loop threads (default: one per core).")
    var threads = System.coreCount

    @OptionGroup var log: LogOptions

    func validate() throws {
        guard self.threads > 0 else {
            throw ValidationError("--threads must be positive")
        }
        for text in self.listen {
            _ = try Self.endpoint(text, option: "--listen")
        }
        if let admin = self.admin {
            _ = try Self.endpoint(admin, option: "--admin")
        }
        guard self.config != nil || self.rules != nil else {
            throw ValidationError("give --config FILE or --rules DIR (the rule files name the upstreams to proxy to)")
        }
    }

    private static func endpoint(_ text: String, option: String) throws -> Endpoint {
        do {
            return try Endpoint.parse(text)
        } catch {
            throw ValidationError("\(option): \(error)")
        }
    }

    /// The config file's settings with the flags applied.
    func gatewayConfiguration() throws -> GatewayConfiguration {
        var configuration = try self.config.map { try GatewayConfiguration.load(path: $0) }
            ?? GatewayConfiguration(listeners: [.init(endpoint: Endpoint(host: "0.0.0.0", port: 8080))])
        if !self.listen.isEmpty {
            configuration.listeners = try self.listen.map { .init(endpoint: try Self.endpoint($0, option: "--listen")) }
        }
        if let admin = self.admin {
            configuration.admin = try Self.endpoint(admin, option: "--admin")
        }
        if let redis = self.redis {
            configuration.redis = redis
        }
        if let rules = self.rules {
            configuration.rulesDirectory = rules
        }
        return configuration
    }

    /// The admin token in `path`: its first line, at least 16 characters.
    static func readAdminToken(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("admin token_file \(path): cannot be read")
        }
        let token = text.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard token.count >= 16, token.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw ValidationError("admin token_file \(path): the token must be at least 16 printable ASCII characters on the first line")
        }
        return token
    }

    func run() async throws {
        self.log.bootstrap()
        let logger = Logger(label: "spikegate.gateway")
        let configuration: GatewayConfiguration
        let rules: RuleSet
        do {
            configuration = try self.gatewayConfiguration()
            guard let directory = configuration.rulesDirectory else {
                throw ValidationError("the config names no rules directory; add `rules: DIR` or pass --rules DIR")
            }
            rules = try RulesLoader.load(directory: directory)
        } catch let error as ConfigurationError {
            throw ValidationError("\(error)")
        } catch let error as RulesError {
            throw ValidationError("\(error)")
        }
        // swift-metrics for the whole process, exported in Prometheus' format on /metrics.
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        MetricsSystem.bootstrap(factory)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.threads)
        do {
            let gateway = try await Gateway.start(
                configuration: configuration, rules: rules, group: group, metrics: GatewayMetrics(factory: factory), logger: logger
            )
            let watcher = configuration.rulesDirectory.map { directory in
                RulesWatcher(gateway: gateway, directory: directory, logger: logger)
            }
            var admin: AdminServer?
            if let endpoint = configuration.admin {
                let token = try configuration.adminTokenFile.map(Self.readAdminToken)
                admin = try await AdminServer.start(
                    endpoint: endpoint, gateway: gateway, watcher: watcher, metrics: { registry.emitToString() },
                    token: token, revealsCaptchaAnswers: configuration.adminRevealsCaptchaAnswers, group: group, logger: logger
                )
            }
            let ports = gateway.ports.map(String.init).joined(separator: ",")
            print("gateway listening on port \(ports), rules \(rules.version)" + (admin.map { ", admin on port \($0.port)" } ?? ""))
            // Scripts wait for this line; stdout to a file is block-buffered otherwise.
            fflush(nil)
            var services: [any Service] = [GatewayService(gateway: gateway, admin: admin, watcher: watcher, drainTimeout: configuration.timeouts.drain, logger: logger)]
            if let watcher {
                services.append(ReloadOnHangUp(watcher: watcher))
            }
            let serviceGroup = ServiceGroup(configuration: ServiceGroupConfiguration(
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            ))
            try await serviceGroup.run()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }
}

/// Runs a started gateway until SIGTERM/SIGINT, then drains it.
private struct GatewayService: Service {
    let gateway: Gateway
    let admin: AdminServer?
    let watcher: RulesWatcher?
    let drainTimeout: Duration
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        self.logger.info("draining", metadata: ["timeout": "\(self.drainTimeout)"])
        self.watcher?.stop()
        await self.gateway.shutdown(gracePeriod: self.drainTimeout)
        await self.admin?.shutdown()
        self.logger.info("stopped")
    }
}

/// SIGHUP reloads the rule files (as nginx and HAProxy reload their configuration).
private struct ReloadOnHangUp: Service {
    let watcher: RulesWatcher

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            self.watcher.reloadNow(reason: "SIGHUP")
        }
    }
}

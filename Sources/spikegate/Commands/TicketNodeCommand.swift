import ArgumentParser
import GateCore
import GateRedis
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif
import TicketNode

/// `spikegate ticket-node`: the reference ticket backend the gateway forwards to.
struct TicketNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ticket-node",
        abstract: "Run a ticket node: local stock share first, then the sale's atomic Redis script."
    )

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = "127.0.0.1:3001"

    @Option(help: "Redis URL (redis://[user:password@]host:port/db, unix:///path, redis-cluster://host:port,host:port or redis-sentinel://host:26379,host:26379/primary-name).")
    var redis = "redis://127.0.0.1:6379"

    @Option(help: "Replicas that must acknowledge each purchase and payment (WAIT) before it is answered as done; fewer in time: answered 'not confirmed' (code -13) and reconciled later. 0: no wait.")
    var minReplicasAck = 0

    @Option(help: "How long a purchase waits for --min-replicas-ack acknowledgements.")
    var replicaAckTimeout = "100ms"

    @Option(help: "How long one Redis command may take before the request is answered 503.")
    var redisTimeout = "500ms"

    @Option(help: "Sale id (create it with `spikegate sale init`).")
    var sale: String

    @Option(help: "This node's share of the stock.")
    var localStock: Int

    @Option(help: "Extra share on top, as a fraction (0.2 = 20%), so live nodes cover a dead one's share.")
    var buffer = 0.2

    @Option(help: "Node name, sent in X-Ticket-Node and recorded in orders (default: node-PORT).")
    var name: String?

    @Option(help: "How often expired reservations go back to stock.")
    var reapInterval = "1s"

    @Option(help: "How often a node that answers sold-out from memory looks at the global stock.")
    var refreshInterval = "200ms"

    @Option(help: "Append one JSON line per request (route, account, answer, local sales, latency) to FILE.")
    var statLog: String?

    @OptionGroup var log: LogOptions

    @Option(help: "On SIGTERM/SIGINT, how long requests in flight may take before connections are closed.")
    var drainTimeout = "10s"

    @Option(help: "Event-loop threads (default: one per core).")
    var threads = System.coreCount

    func validate() throws {
        _ = try self.endpoint()
        guard self.localStock >= 0 else {
            throw ValidationError("--local-stock must not be negative")
        }
        guard self.buffer >= 0, self.buffer <= 10 else {
            throw ValidationError("--buffer must be between 0 and 10 (a fraction: 0.2 = 20%)")
        }
        guard self.threads > 0 else {
            throw ValidationError("--threads must be positive")
        }
        guard (0...16).contains(self.minReplicasAck) else {
            throw ValidationError("--min-replicas-ack must be from 0 to 16")
        }
        if let statLog = self.statLog, statLog.isEmpty {
            throw ValidationError("--stat-log needs a file path")
        }
        for (option, text) in [
            ("--reap-interval", self.reapInterval), ("--refresh-interval", self.refreshInterval), ("--redis-timeout", self.redisTimeout),
            ("--replica-ack-timeout", self.replicaAckTimeout),
        ] {
            do {
                guard try DurationText.parse(text) > .zero else {
                    throw ValidationError("\(option) must be positive")
                }
            } catch let error as DurationText.ParseError {
                throw ValidationError("\(option): \(error)")
            }
        }
        do {
            _ = try DurationText.parse(self.drainTimeout)
        } catch {
            throw ValidationError("--drain-timeout: \(error)")
        }
    }

    /// `--listen` split into host and port; IPv6 hosts in brackets.
    private func endpoint() throws -> (host: String, port: Int) {
        guard let colon = self.listen.lastIndex(of: ":"),
            let port = Int(self.listen[self.listen.index(after: colon)...]), (0...65535).contains(port)
        else {
            throw ValidationError("--listen '\(self.listen)' must be HOST:PORT, e.g. 127.0.0.1:3001")
        }
        var host = String(self.listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        }
        guard !host.isEmpty else {
            throw ValidationError("--listen '\(self.listen)' has no host (write 0.0.0.0:PORT for every address)")
        }
        return (host, port)
    }

    func run() async throws {
        self.log.bootstrap()
        let (host, port) = try self.endpoint()
        var redisConfiguration = try RedisConfiguration(url: self.redis)
        redisConfiguration.commandTimeout = try DurationText.parse(self.redisTimeout)
        let logger = Logger(label: "spikegate.ticket-node")
        var configuration = TicketNodeConfiguration(
            host: host,
            port: port,
            sale: self.sale,
            name: self.name ?? "node-\(port)",
            localStock: self.localStock,
            buffer: self.buffer,
            reapInterval: try DurationText.parse(self.reapInterval),
            refreshInterval: try DurationText.parse(self.refreshInterval),
            statLogPath: self.statLog
        )
        configuration.minReplicasAck = self.minReplicasAck
        configuration.replicaAckTimeout = try DurationText.parse(self.replicaAckTimeout)
        let drainTimeout = try DurationText.parse(self.drainTimeout)
        try await RedisClient.withClient(configuration: redisConfiguration, threads: self.threads, logger: logger) { redis, group in
            try await redis.connect()
            let server = try await TicketNodeServer.start(configuration: configuration, redis: redis, group: group, logger: logger)
            print("ticket node \(configuration.name) listening on \(host):\(server.port), sale \(self.sale), share \(self.localStock)")
            fflush(nil)
            let service = TicketNodeService(server: server, drainTimeout: drainTimeout, logger: logger)
            let services = ServiceGroup(configuration: ServiceGroupConfiguration(
                services: [service],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            ))
            try await services.run()
        }
    }
}

/// Runs a started ticket node until SIGTERM/SIGINT, then drains it.
private struct TicketNodeService: Service {
    let server: TicketNodeServer
    let drainTimeout: Duration
    let logger: Logger

    func run() async throws {
        // Returns on graceful shutdown; throws if the task is cancelled instead.
        try? await gracefulShutdown()
        self.logger.info("draining", metadata: ["timeout": "\(self.drainTimeout)"])
        try await self.server.shutdown(gracePeriod: self.drainTimeout)
        self.logger.info("stopped")
    }
}

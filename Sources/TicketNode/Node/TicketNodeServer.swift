import GateChannels
import GateCore
import GateRedis
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A running ticket node: the HTTP listener, the reaper, the stock refresher and the
/// reconciler of unconfirmed writes.
///
/// The reaper returns expired reservations to stock every `reapInterval` (every node runs one;
/// the script is idempotent). The refresher looks at the global stock every `refreshInterval`
/// while this node answers sold-out from memory, and reopens it when tickets are left.
///
/// `shutdown(gracePeriod:)` drains: the listener closes, idle keep-alive connections close,
/// requests in flight get their answers, then the timers stop and the stat log is flushed.
public final class TicketNodeServer: Sendable {
    public let configuration: TicketNodeConfiguration
    private let channel: any Channel
    private let context: TicketNodeContext
    private let tasks: [RepeatedTask]
    private let connections: ConnectionDrainer
    private let logger: Logger

    /// The port the node listens on (the kernel's pick when configured as 0).
    public var port: Int {
        self.channel.localAddress?.port ?? self.configuration.port
    }

    /// The node's local share, for tests and reports.
    public var stock: LocalStock {
        self.context.stock
    }

    private init(
        configuration: TicketNodeConfiguration,
        channel: any Channel,
        context: TicketNodeContext,
        tasks: [RepeatedTask],
        connections: ConnectionDrainer,
        logger: Logger
    ) {
        self.configuration = configuration
        self.channel = channel
        self.context = context
        self.tasks = tasks
        self.connections = connections
        self.logger = logger
    }

    /// Loads the sale's scripts, checks the sale exists, and starts listening.
    public static func start(
        configuration: TicketNodeConfiguration,
        redis: RedisClient,
        group: any EventLoopGroup,
        logger: Logger = Logger(label: "spikegate.ticket-node")
    ) async throws -> TicketNodeServer {
        let acknowledgement = SaleStore.Acknowledgement(replicas: configuration.minReplicasAck, timeout: configuration.replicaAckTimeout)
        let store = try SaleStore(redis: redis, sale: configuration.sale, acknowledgement: acknowledgement)
        try await store.loadScripts()
        return try await Self.start(configuration: configuration, store: store, group: group, logger: logger)
    }

    /// Checks the sale exists in `store` (a `MemorySaleStore` shared by nodes in this process,
    /// or a `SaleStore`) and starts listening; `configuration.sale` must name the store's sale.
    public static func start(
        configuration: TicketNodeConfiguration,
        store: any TicketStore,
        group: any EventLoopGroup,
        logger: Logger = Logger(label: "spikegate.ticket-node")
    ) async throws -> TicketNodeServer {
        guard store.sale == configuration.sale else {
            throw SaleError(code: .invalidSale, message: "the node sells '\(configuration.sale)' but the store holds sale '\(store.sale)'")
        }
        _ = try await store.status()
        let stock = LocalStock(share: configuration.localStock, buffer: configuration.buffer)
        let loop = group.next()
        let statLog = try configuration.statLogPath.map { path in
            try StatLog(path: path, node: configuration.name, eventLoop: loop, logger: logger)
        }
        let context = TicketNodeContext(name: configuration.name, store: store, stock: stock, statLog: statLog, logger: logger)
        let connections = ConnectionDrainer()
        let bound: any Channel
        do {
            bound = try await Self.bind(configuration: configuration, context: context, connections: connections, group: group)
        } catch {
            try? await statLog?.close(on: loop)
            throw error
        }
        let tasks = Self.startTimers(configuration: configuration, context: context, on: loop, logger: logger)
        logger.info("ticket node listening", metadata: [
            "address": "\(configuration.host):\(bound.localAddress?.port ?? configuration.port)",
            "sale": "\(configuration.sale)", "name": "\(configuration.name)", "share": "\(configuration.localStock)",
            "stat_log": "\(configuration.statLogPath ?? "-")",
        ])
        return TicketNodeServer(configuration: configuration, channel: bound, context: context, tasks: tasks, connections: connections, logger: logger)
    }

    private static func bind(
        configuration: TicketNodeConfiguration,
        context: TicketNodeContext,
        connections: ConnectionDrainer,
        group: any EventLoopGroup
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                connections.register(channel)
                return channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(TicketHTTPHandler(node: context))
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
    }

    private static func startTimers(
        configuration: TicketNodeConfiguration,
        context: TicketNodeContext,
        on loop: any EventLoop,
        logger: Logger
    ) -> [RepeatedTask] {
        let store = context.store
        let stock = context.stock
        let reaper = loop.scheduleRepeatedAsyncTask(initialDelay: configuration.reapInterval.timeAmount, delay: configuration.reapInterval.timeAmount) { _ in
            store.reap(limit: 1_000, on: loop).map { returned in
                if returned > 0 {
                    logger.info("returned expired reservations to stock", metadata: ["count": "\(returned)"])
                }
            }.recover { error in
                logger.warning("reaper failed", metadata: ["error": "\(error)"])
            }
        }
        let refresher = loop.scheduleRepeatedAsyncTask(initialDelay: configuration.refreshInterval.timeAmount, delay: configuration.refreshInterval.timeAmount) { _ in
            Self.refresh(stock: stock, store: store, on: loop).recover { error in
                logger.warning("stock refresh failed", metadata: ["error": "\(error)"])
            }
        }
        let reconciler = loop.scheduleRepeatedAsyncTask(initialDelay: configuration.reconcileInterval.timeAmount, delay: configuration.reconcileInterval.timeAmount) { _ in
            context.reconcile(on: loop)
        }
        return [reaper, refresher, reconciler]
    }

    /// Reopens a closed node when the global stock has tickets left (what the refresher does
    /// every `refreshInterval`; callable directly, e.g. by tests and tools).
    public func refreshStock() async throws {
        try await Self.refresh(stock: self.context.stock, store: self.context.store, on: self.channel.eventLoop).get()
    }

    private static func refresh(stock: LocalStock, store: any TicketStore, on loop: any EventLoop) -> EventLoopFuture<Void> {
        guard stock.isClosed else {
            return loop.makeSucceededVoidFuture()
        }
        return store.status(on: loop).map { status in
            stock.refresh(remaining: status.remaining)
        }
    }

    /// Drains and stops: the listener closes at once, idle keep-alive connections close, each
    /// request in flight gets its answer (connections still open after `gracePeriod` are closed
    /// hard); then the reaper and refresher stop and the stat log writes what it holds.
    public func shutdown(gracePeriod: Duration = .seconds(10)) async throws {
        let loop = self.channel.eventLoop
        try? await self.channel.close()
        if await !self.connections.drain(on: loop, gracePeriod: gracePeriod.timeAmount) {
            self.logger.warning("connections were still open after the grace period; closed them", metadata: [
                "grace": "\(gracePeriod)",
            ])
        }
        for task in self.tasks {
            let cancelled = loop.makePromise(of: Void.self)
            task.cancel(promise: cancelled)
            try? await cancelled.futureResult.get()
        }
        try await self.context.statLog?.close(on: loop)
    }

    /// Stops at once: no grace for requests in flight (tests use it to "kill" a node).
    public func stop() async throws {
        try await self.shutdown(gracePeriod: .zero)
    }

    /// Purchases and payments answered `unconfirmed` and not yet reconciled.
    public var unconfirmedWrites: Int {
        self.context.unconfirmedCount
    }

    /// Completes when the listener closes.
    public var closed: EventLoopFuture<Void> {
        self.channel.closeFuture
    }
}

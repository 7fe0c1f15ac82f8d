import GateCore
import GateRedis
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A running ticket node: the HTTP listener, the reaper and the stock refresher.
///
/// The reaper returns expired reservations to stock every `reapInterval` (every node runs one;
/// the script is idempotent). The refresher looks at the global stock every `refreshInterval`
/// while this node answers sold-out from memory, and reopens it when tickets are left.
public final class TicketNodeServer: Sendable {
    public let configuration: TicketNodeConfiguration
    private let channel: any Channel
    private let context: TicketNodeContext
    private let tasks: [RepeatedTask]

    /// The port the node listens on (the kernel's pick when configured as 0).
    public var port: Int {
        self.channel.localAddress?.port ?? self.configuration.port
    }

    /// The node's local share, for tests and reports.
    public var stock: LocalStock {
        self.context.stock
    }

    private init(configuration: TicketNodeConfiguration, channel: any Channel, context: TicketNodeContext, tasks: [RepeatedTask]) {
        self.configuration = configuration
        self.channel = channel
        self.context = context
        self.tasks = tasks
    }

    /// Loads the sale's scripts, checks the sale exists, and starts listening.
    public static func start(
        configuration: TicketNodeConfiguration,
        redis: RedisClient,
        group: any EventLoopGroup,
        logger: Logger = Logger(label: "spikegate.ticket-node")
    ) async throws -> TicketNodeServer {
        let store = try SaleStore(redis: redis, sale: configuration.sale)
        try await store.loadScripts()
        _ = try await store.status()
        let stock = LocalStock(share: configuration.localStock, buffer: configuration.buffer)
        let context = TicketNodeContext(name: configuration.name, store: store, stock: stock, logger: logger)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(TicketHTTPHandler(node: context))
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()

        let loop = group.next()
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
        logger.info("ticket node listening", metadata: [
            "address": "\(configuration.host):\(channel.localAddress?.port ?? configuration.port)",
            "sale": "\(configuration.sale)", "name": "\(configuration.name)", "share": "\(configuration.localStock)",
        ])
        return TicketNodeServer(configuration: configuration, channel: channel, context: context, tasks: [reaper, refresher])
    }

    /// Reopens a closed node when the global stock has tickets left (what the refresher does
    /// every `refreshInterval`; callable directly, e.g. by tests and tools).
    public func refreshStock() async throws {
        try await Self.refresh(stock: self.context.stock, store: self.context.store, on: self.channel.eventLoop).get()
    }

    private static func refresh(stock: LocalStock, store: SaleStore, on loop: any EventLoop) -> EventLoopFuture<Void> {
        guard stock.isClosed else {
            return loop.makeSucceededVoidFuture()
        }
        return store.status(on: loop).map { status in
            stock.refresh(remaining: status.remaining)
        }
    }

    /// Stops the reaper and the refresher and closes the listener.
    public func stop() async throws {
        for task in self.tasks {
            task.cancel()
        }
        try await self.channel.close()
    }

    /// Completes when the listener closes.
    public var closed: EventLoopFuture<Void> {
        self.channel.closeFuture
    }
}

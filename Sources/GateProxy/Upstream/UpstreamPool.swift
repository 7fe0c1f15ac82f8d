import GateRules
import NIOCore
import NIOPosix

/// The keep-alive connections of one event loop to every backend it has talked to.
///
/// Each event loop has its own pool, and a client connection only borrows upstream
/// connections of its own loop: a request is read, forwarded and answered on one thread.
/// Idle connections are kept up to `maximumIdle` per backend; one idle longer than
/// `maximumIdleTime` is closed instead of reused, since backends drop idle keep-alives
/// (nginx after 75 s) and a request written into a connection the backend is closing is lost.
final class UpstreamPool {
    /// Why no connection was made.
    struct ConnectError: Error, CustomStringConvertible {
        let endpoint: Endpoint
        let underlying: any Error

        var description: String {
            "cannot connect to \(self.endpoint): \(self.underlying)"
        }
    }

    static let maximumIdleTime = TimeAmount.seconds(20)

    let eventLoop: any EventLoop
    private let connectTimeout: TimeAmount
    private let maximumIdle: Int
    private let outboundBufferBytes: Int
    /// One stack per backend, a class so a request changes it in place: mutating an array
    /// inside a dictionary goes through a `_modify` accessor that allocates on every call.
    private final class IdleStack {
        var connections: [UpstreamConnection] = []
    }

    private var idle: [Endpoint: IdleStack] = [:]
    private var closed = false

    init(eventLoop: any EventLoop, connectTimeout: TimeAmount, maximumIdle: Int, outboundBufferBytes: Int) {
        self.eventLoop = eventLoop
        self.connectTimeout = connectTimeout
        self.maximumIdle = max(0, maximumIdle)
        self.outboundBufferBytes = max(1024, outboundBufferBytes)
    }

    /// An idle connection to `endpoint` from the pool, or `nil`.
    func takeIdle(_ endpoint: Endpoint) -> UpstreamConnection? {
        let now = NIODeadline.now()
        guard let stack = self.idle[endpoint] else {
            return nil
        }
        while let connection = stack.connections.popLast() {
            if connection.isActive && now - connection.idleSince < Self.maximumIdleTime {
                return connection
            }
            connection.close()
        }
        return nil
    }

    /// A new connection to `endpoint` (made on this pool's event loop).
    func connect(_ endpoint: Endpoint) -> EventLoopFuture<UpstreamConnection>.Isolated {
        let water = ChannelOptions.Types.WriteBufferWaterMark(low: self.outboundBufferBytes / 2, high: self.outboundBufferBytes)
        return ClientBootstrap(group: self.eventLoop)
            .connectTimeout(self.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: water)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnection(endpoint: endpoint))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .flatMapErrorThrowing { error in
                throw ConnectError(endpoint: endpoint, underlying: error)
            }
            .assumeIsolated()
            .flatMapThrowing { channel in
                let connection = try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
                // Strong captures, released when the channel closes: a weak reference would give
                // the connection a side table, and every retain of it would take the slow path.
                channel.closeFuture.assumeIsolated().whenComplete { _ in
                    self.forget(connection)
                }
                return connection
            }
    }

    /// Takes a connection back after a complete exchange; closes it when the pool is full or
    /// shutting down.
    func release(_ connection: UpstreamConnection) {
        connection.detach()
        connection.resumeReading()
        let stack: IdleStack
        if let existing = self.idle[connection.endpoint] {
            stack = existing
        } else {
            stack = IdleStack()
            self.idle[connection.endpoint] = stack
        }
        guard !self.closed, connection.isActive, stack.connections.count < self.maximumIdle else {
            connection.close()
            return
        }
        connection.idleSince = .now()
        stack.connections.append(connection)
    }

    private func forget(_ connection: UpstreamConnection) {
        guard let stack = self.idle[connection.endpoint], let index = stack.connections.firstIndex(where: { $0 === connection }) else {
            return
        }
        stack.connections.remove(at: index)
    }

    /// Closes every idle connection and keeps no more.
    func closeAll() {
        self.closed = true
        let all = self.idle.values.flatMap(\.connections)
        self.idle = [:]
        for connection in all {
            connection.close()
        }
    }
}

@available(*, unavailable)
extension UpstreamPool: Sendable {}

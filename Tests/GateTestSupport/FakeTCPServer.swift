import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A loopback TCP server that is not Redis: it answers every read with fixed bytes, or stays
/// silent, and counts the connections it accepted and saw closed.
public final class FakeTCPServer: Sendable {
    private final class Responder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let reply: ByteBuffer?

        init(reply: ByteBuffer?) {
            self.reply = reply
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if let reply = self.reply {
                context.writeAndFlush(self.wrapOutboundOut(reply), promise: nil)
            }
        }
    }

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let counts: NIOLockedValueBox<(accepted: Int, closed: Int)>
    /// The port it listens on, on 127.0.0.1.
    public let port: Int

    /// Connections accepted so far.
    public var accepted: Int {
        self.counts.withLockedValue { $0.accepted }
    }

    /// Connections that have closed so far.
    public var closed: Int {
        self.counts.withLockedValue { $0.closed }
    }

    private init(group: MultiThreadedEventLoopGroup, channel: any Channel, counts: NIOLockedValueBox<(accepted: Int, closed: Int)>) {
        self.group = group
        self.channel = channel
        self.counts = counts
        self.port = channel.localAddress?.port ?? 0
    }

    /// Starts a server answering every read with `reply` (`nil`: never answers).
    public static func start(reply: String?) async throws -> FakeTCPServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let counts = NIOLockedValueBox((accepted: 0, closed: 0))
        let bytes = reply.map { ByteBuffer(string: $0) }
        do {
            let channel = try await ServerBootstrap(group: group)
                .childChannelInitializer { channel in
                    counts.withLockedValue { $0.accepted += 1 }
                    channel.closeFuture.whenComplete { _ in counts.withLockedValue { $0.closed += 1 } }
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Responder(reply: bytes))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            return FakeTCPServer(group: group, channel: channel, counts: counts)
        } catch {
            try await group.shutdownGracefully()
            throw error
        }
    }

    /// Stops listening and shuts the server's event loop down.
    public func stop() async throws {
        try await self.channel.close()
        try await self.group.shutdownGracefully()
    }
}

/// Runs `body` with a `FakeTCPServer`, stopping it afterwards whatever happens.
public func withFakeTCPServer<Result>(reply: String?, _ body: (FakeTCPServer) async throws -> Result) async throws -> Result {
    let server = try await FakeTCPServer.start(reply: reply)
    do {
        let result = try await body(server)
        try await server.stop()
        return result
    } catch {
        try? await server.stop()
        throw error
    }
}

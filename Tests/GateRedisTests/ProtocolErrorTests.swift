import GateRedis
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// A loopback server that answers anything with text that is not RESP.
private final class GarbageHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "hello, I am not redis\r\n")), promise: nil)
    }
}

@Suite("GateRedis against a server that is not Redis", .timeLimit(.minutes(1)))
struct ProtocolErrorTests {
    @Test("garbage replies: protocol error, connection closed, no crash")
    func garbageServer() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let closed = NIOLockedValueBox(0)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.closeFuture.whenComplete { _ in closed.withLockedValue { $0 += 1 } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(GarbageHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = server.localAddress?.port ?? 0
        do {
            try await withClient(url: "redis://127.0.0.1:\(port)") { client, _ in
                let error = await redisError { try await client.send("PING") }
                #expect(error?.code == .protocolError)
                #expect(error?.message.contains("\"h\"") == true, "\(error?.description ?? "")")
                #expect(error?.command == "PING")

                // The client closed that connection and is still usable (it dials again).
                var closedCount = 0
                for _ in 0..<200 where closedCount == 0 {
                    closedCount = closed.withLockedValue { $0 }
                    if closedCount == 0 {
                        try await Task.sleep(for: .milliseconds(10))  // bounded wait for the server to see the close
                    }
                }
                #expect(closedCount >= 1)
                let second = await redisError { try await client.send("PING") }
                #expect(second != nil)
            }
        } catch {
            try await server.close()
            try await group.shutdownGracefully()
            throw error
        }
        try await server.close()
        try await group.shutdownGracefully()
    }
}

import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// One keep-alive HTTP/1.1 connection for tests; concurrent callers pipeline on it.
///
/// A real client on a real socket (NIO's HTTP encoder and decoder), so the server under test
/// sees what any client would send. Each request registers its reply slot and writes its bytes
/// in one event-loop task, so replies (which come back in request order) always reach the
/// caller that sent the request, however many tasks share the connection.
public final class HTTPTestConnection: Sendable {
    /// A complete response.
    public struct Response: Sendable {
        public let status: Int
        public let headers: [(String, String)]
        public let body: String
        /// The body's bytes as received (for binary bodies such as images).
        public let bytes: [UInt8]

        /// The first value of header `name` (case-insensitive).
        public func header(_ name: String) -> String? {
            self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    private final class ResponseCollector: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPClientResponsePart

        private struct Partial {
            var head: HTTPResponseHead?
            var bytes: [UInt8] = []
        }

        private let pending = NIOLockedValueBox<[EventLoopPromise<Response>]>([])
        private let partial = NIOLockedValueBox(Partial())

        func expect(_ promise: EventLoopPromise<Response>) {
            self.pending.withLockedValue { $0.append(promise) }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.partial.withLockedValue { $0 = Partial(head: head) }
            case .body(let buffer):
                self.partial.withLockedValue { $0.bytes += buffer.readableBytesView }
            case .end:
                let done = self.partial.withLockedValue { partial -> Partial in
                    defer { partial = Partial() }
                    return partial
                }
                let promise = self.pending.withLockedValue { $0.isEmpty ? nil : $0.removeFirst() }
                promise?.succeed(Response(
                    status: Int(done.head?.status.code ?? 0),
                    headers: done.head?.headers.map { ($0.name, $0.value) } ?? [],
                    body: String(decoding: done.bytes, as: UTF8.self),
                    bytes: done.bytes
                ))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            let waiting = self.pending.withLockedValue { promises -> [EventLoopPromise<Response>] in
                defer { promises.removeAll() }
                return promises
            }
            for promise in waiting {
                promise.fail(TestSupportError("the server closed the connection before answering"))
            }
            context.fireChannelInactive()
        }
    }

    private let channel: any Channel
    private let collector: ResponseCollector
    private let host: String

    private init(channel: any Channel, collector: ResponseCollector, host: String) {
        self.channel = channel
        self.collector = collector
        self.host = host
    }

    /// Connects to `host:port`, from `localAddress` (e.g. another 127.x address) when given.
    public static func connect(
        host: String = "127.0.0.1",
        port: Int,
        from localAddress: String? = nil,
        group: any EventLoopGroup
    ) async throws -> HTTPTestConnection {
        let collector = ResponseCollector()
        var bootstrap = ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.pipeline.addHTTPClientHandlers().flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
        if let localAddress {
            bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: localAddress, port: 0))
        }
        let channel = try await bootstrap.connect(host: host, port: port).get()
        return HTTPTestConnection(channel: channel, collector: collector, host: host)
    }

    /// Sends a request and waits for its response.
    public func request(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: String? = nil) async throws -> Response {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: self.host)
        for (name, value) in headers {
            head.headers.add(name: name, value: value)
        }
        head.headers.add(name: "Content-Length", value: String(body?.utf8.count ?? 0))
        let promise = self.channel.eventLoop.makePromise(of: Response.self)
        let channel = self.channel
        let collector = self.collector
        let finalHead = head
        self.channel.eventLoop.execute {
            // A closed connection fails the request now (no reply could ever come).
            guard channel.isActive else {
                promise.fail(TestSupportError("the connection is closed"))
                return
            }
            collector.expect(promise)
            channel.write(HTTPClientRequestPart.head(finalHead), promise: nil)
            if let body {
                channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil)
            }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        }
        return try await promise.futureResult.get()
    }

    /// Completes when the connection closes, from either side.
    public var closed: EventLoopFuture<Void> {
        self.channel.closeFuture
    }

    /// Closes the connection.
    public func close() async {
        try? await self.channel.close()
    }
}

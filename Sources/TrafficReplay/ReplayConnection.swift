import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Where replayed traffic goes: `http://HOST:PORT` or `https://HOST:PORT`.
public struct ReplayTarget: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let tls: Bool

    /// Reads `url` (`http://127.0.0.1:8080`, `https://localhost:8443`; a path is not allowed:
    /// the scenario gives the paths).
    public init(url: String) throws(ReplayError) {
        let tls: Bool
        let rest: Substring
        if url.hasPrefix("http://") {
            tls = false
            rest = url.dropFirst("http://".count)
        } else if url.hasPrefix("https://") {
            tls = true
            rest = url.dropFirst("https://".count)
        } else {
            throw ReplayError("target '\(url)' must start with http:// or https://")
        }
        let authority = rest.hasSuffix("/") ? rest.dropLast() : rest
        guard !authority.contains("/") else {
            throw ReplayError("target '\(url)' must not have a path (the scenario gives the paths)")
        }
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(port) else {
            throw ReplayError("target '\(url)' needs a port, as http://127.0.0.1:8080")
        }
        let host = String(authority[..<colon])
        guard !host.isEmpty else {
            throw ReplayError("target '\(url)' has no host")
        }
        self.host = host
        self.port = port
        self.tls = tls
    }

    public var description: String {
        "\(self.tls ? "https" : "http")://\(self.host):\(self.port)"
    }
}

/// A replay problem the operator has to fix (a bad target, a bad capture file, no address to
/// bind), with what was wrong.
public struct ReplayError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// One keep-alive HTTP/1.1 client connection of a replayed user, from its own source address,
/// one request at a time.
final class ReplayConnection: Sendable {
    /// A complete answer.
    struct Response: Sendable {
        let status: Int
        let body: String
        let retryAfter: String?
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPClientResponsePart

        private struct State {
            var waiting: EventLoopPromise<Response>?
            var head: HTTPResponseHead?
            var body: [UInt8] = []
        }

        private let state = NIOLockedValueBox(State())

        func expect(_ promise: EventLoopPromise<Response>) {
            self.state.withLockedValue { $0.waiting = promise }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.state.withLockedValue {
                    $0.head = head
                    $0.body.removeAll(keepingCapacity: true)
                }
            case .body(let buffer):
                self.state.withLockedValue { $0.body += buffer.readableBytesView }
            case .end:
                let done = self.state.withLockedValue { state -> (EventLoopPromise<Response>?, Response, keepAlive: Bool) in
                    defer { state.waiting = nil }
                    let head = state.head
                    return (state.waiting, Response(
                        status: Int(head?.status.code ?? 0),
                        body: String(decoding: state.body, as: UTF8.self),
                        retryAfter: head?.headers.first(name: "Retry-After")
                    ), head?.isKeepAlive ?? false)
                }
                // The server said `Connection: close`: closed before the answer is handed on,
                // so the next request of this user opens a new connection instead of failing.
                if !done.keepAlive {
                    context.close(promise: nil)
                }
                done.0?.succeed(done.1)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.fail(ReplayError("connection failed: \(error)"))
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.fail(ReplayError("the server closed the connection before answering"))
            context.fireChannelInactive()
        }

        func fail(_ error: ReplayError) {
            let waiting = self.state.withLockedValue { state -> EventLoopPromise<Response>? in
                defer { state.waiting = nil }
                return state.waiting
            }
            waiting?.fail(error)
        }
    }

    private let channel: any Channel
    private let collector: Collector
    private let hostHeader: String

    private init(channel: any Channel, collector: Collector, hostHeader: String) {
        self.channel = channel
        self.collector = collector
        self.hostHeader = hostHeader
    }

    /// Connects to `target` from `source` (bound first, so the gateway sees that client address).
    static func connect(
        to target: ReplayTarget,
        from source: IPv4?,
        tls: NIOSSLContext?,
        timeout: Duration,
        group: any EventLoopGroup
    ) async throws -> ReplayConnection {
        let collector = Collector()
        let serverHostname = target.host.first?.isNumber == true ? nil : target.host
        var bootstrap = ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .connectTimeout(.nanoseconds(Int64(timeout.seconds * 1e9)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverHostname))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
        if let source {
            bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source.description, port: 0))
        }
        let channel = try await bootstrap.connect(host: target.host, port: target.port).get()
        return ReplayConnection(channel: channel, collector: collector, hostHeader: target.host)
    }

    /// Whether the connection can take another request.
    var isOpen: Bool {
        self.channel.isActive
    }

    /// Sends one request and waits for its answer, at most `timeout`.
    func request(method: String, path: String, headers: [(String, String)], body: String?, timeout: Duration) async throws -> Response {
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
        head.headers.add(name: "Host", value: self.hostHeader)
        for (name, value) in headers {
            head.headers.add(name: name, value: value)
        }
        head.headers.add(name: "Content-Length", value: String(body?.utf8.count ?? 0))
        let promise = self.channel.eventLoop.makePromise(of: Response.self)
        let channel = self.channel
        let collector = self.collector
        let finalHead = head
        let nanoseconds = Int64(timeout.seconds * 1e9)
        self.channel.eventLoop.execute {
            guard channel.isActive else {
                promise.fail(ReplayError("the connection is closed"))
                return
            }
            collector.expect(promise)
            channel.write(HTTPClientRequestPart.head(finalHead), promise: nil)
            if let body, !body.isEmpty {
                channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil)
            }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {
                collector.fail(ReplayError("no answer within \(timeout)"))
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        return try await promise.futureResult.get()
    }

    func close() async {
        try? await self.channel.close()
    }
}

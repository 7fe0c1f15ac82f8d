import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 backend for gateway tests: it answers with its name and what it saw, counts
/// the requests and the raw bytes that reached it, and can be stopped and restarted on the same
/// port (a backend that dies and comes back).
///
/// - `GET /health`: 200 (the gateway's health checks; counted apart).
/// - `/status/NNN`: answers NNN.
/// - `/slow/MS`: answers after MS milliseconds.
/// - `/big/BYTES`: a body of BYTES bytes, streamed in 16 KiB writes that wait for writability.
/// - `/chunked/BYTES`: the same body without a length (NIO frames it chunked).
/// - `/close/BYTES`: the same body as HTTP/1.0 without a length: it ends when the backend closes.
/// - `/work/MS`: MS milliseconds of work in one of the backend's `slots` (a thread pool: with
///   all slots busy it waits its turn, FIFO), then 200.
/// - `/sale`: a sale of `stock` tickets as the ticket node answers it: `{"code":1,…}` while
///   there are tickets, then `{"code":-1,"msg":"sold out"}` with `X-Sold-Out: 1` (200 either way).
/// - `GET /health` answers 503 while `healthy` is false.
/// - anything else: 200 with body `NAME`; headers `X-Backend: NAME` and `X-Seen-*` echoing the
///   request's `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Request-Id` and body length.
public final class TestBackend: Sendable {
    private struct Counts {
        var requests = 0
        var healthChecks = 0
        var proxiedBytes = 0
        var paths: [String] = []
        /// Requests being answered right now, and the most there ever were at once.
        var inProgress = 0
        var peakInProgress = 0
        /// `/work` requests in a slot, and those waiting for one.
        var busySlots = 0
        var waitingForSlot: [@Sendable () -> Void] = []
        var stock = 0
        var healthy = true
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let backend: TestBackend
        private var head: HTTPRequestHead?
        private var bodyBytes = 0
        /// The answer under way is delimited by closing the connection.
        private var closeAfterStream = false

        init(backend: TestBackend) {
            self.backend = backend
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                self.bodyBytes = 0
            case .body(let buffer):
                self.bodyBytes += buffer.readableBytes
            case .end:
                guard let head = self.head else {
                    return
                }
                self.respond(to: head, context: context)
            }
        }

        private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
            let isHealth = head.uri == "/health"
            self.backend.counts.withLockedValue { counts in
                if isHealth {
                    counts.healthChecks += 1
                } else {
                    counts.requests += 1
                    counts.paths.append(head.uri)
                    counts.inProgress += 1
                    counts.peakInProgress = max(counts.peakInProgress, counts.inProgress)
                }
            }
            let backend = self.backend
            let finished = {
                if !isHealth {
                    backend.counts.withLockedValue { $0.inProgress -= 1 }
                }
            }
            var headers = HTTPHeaders()
            headers.add(name: "X-Backend", value: self.backend.name)
            for name in ["X-Forwarded-For", "X-Forwarded-Proto", "X-Request-Id", "Host", "X-Account-Id"] {
                headers.add(name: "X-Seen-\(name)", value: head.headers[name].joined(separator: "|"))
            }
            headers.add(name: "X-Seen-Body-Bytes", value: String(self.bodyBytes))
            // The query (`?…`) only tells requests apart in `paths`.
            let parts = (head.uri.split(separator: "?", maxSplits: 1).first ?? "").split(separator: "/")
            var status = HTTPResponseStatus.ok
            if isHealth && !self.backend.healthy {
                status = .serviceUnavailable
            }
            if head.uri == "/sale" {
                let sold = self.backend.counts.withLockedValue { counts -> Bool in
                    guard counts.stock > 0 else {
                        return false
                    }
                    counts.stock -= 1
                    return true
                }
                let text = sold ? "{\"code\":1,\"msg\":\"ok\"}" : "{\"code\":-1,\"msg\":\"sold out\"}"
                headers.add(name: "Content-Type", value: "application/json")
                if !sold {
                    headers.add(name: "X-Sold-Out", value: "1")
                }
                headers.add(name: "Content-Length", value: String(text.utf8.count))
                finished()
                context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            var work: TimeAmount?
            var delay: TimeAmount?
            var bigBody: Int?
            var framing = "length"
            if parts.count == 2, let number = Int(parts[1]) {
                switch parts[0] {
                case "status":
                    status = HTTPResponseStatus(statusCode: number)
                case "slow":
                    delay = .milliseconds(Int64(number))
                case "work":
                    work = .milliseconds(Int64(number))
                case "big":
                    bigBody = number
                case "chunked", "close":
                    bigBody = number
                    framing = String(parts[0])
                default:
                    break
                }
            }
            let body = ByteBuffer(string: self.backend.name)
            if let bigBody {
                var version = HTTPVersion.http1_1
                switch framing {
                case "chunked":
                    break
                case "close":
                    version = .http1_0
                    self.closeAfterStream = true
                default:
                    headers.add(name: "Content-Length", value: String(bigBody))
                }
                finished()
                context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
                self.stream(remaining: bigBody, context: context)
                return
            }
            headers.add(name: "Content-Length", value: String(body.readableBytes))
            let head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
            let send = {
                finished()
                context.write(self.wrapOutboundOut(.head(head)), promise: nil)
                context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
            }
            if let delay {
                context.eventLoop.assumeIsolated().scheduleTask(in: delay) { send() }
            } else if let work {
                self.inSlot(work: work, context: context, then: send)
            } else {
                send()
            }
        }

        /// Runs `work` in a free slot (or waits for one, FIFO), then `then` on this loop.
        private func inSlot(work: TimeAmount, context: ChannelHandlerContext, then: @escaping () -> Void) {
            let loop = context.eventLoop
            let backend = self.backend
            let finish = NIOLoopBound(then, eventLoop: loop)
            @Sendable func start() {
                loop.scheduleTask(in: work) {
                    let next = backend.counts.withLockedValue { counts -> (@Sendable () -> Void)? in
                        if counts.waitingForSlot.isEmpty {
                            counts.busySlots -= 1
                            return nil
                        }
                        return counts.waitingForSlot.removeFirst()
                    }
                    next?()
                    finish.value()
                }
            }
            let startNow = backend.counts.withLockedValue { counts -> Bool in
                if counts.busySlots < backend.slots {
                    counts.busySlots += 1
                    return true
                }
                counts.waitingForSlot.append { loop.execute { start() } }
                return false
            }
            if startNow {
                start()
            }
        }

        private func stream(remaining: Int, context: ChannelHandlerContext) {
            var left = remaining
            while left > 0 && context.channel.isWritable {
                let size = min(left, 16 * 1024)
                context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(repeating: UInt8(ascii: "x"), count: size)))), promise: nil)
                left -= size
            }
            if left == 0 {
                let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
                if self.closeAfterStream {
                    written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                }
                return
            }
            context.flush()
            // Look again shortly: a test backend may poll instead of tracking writability.
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(5)) {
                if context.channel.isActive {
                    self.stream(remaining: left, context: context)
                }
            }
        }
    }

    /// Counts the raw bytes of one connection; they are added to `proxiedBytes` unless the
    /// connection carried health checks.
    private final class ByteCounter: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer

        let backend: TestBackend
        private var bytes = 0
        private var sawHealth = false

        init(backend: TestBackend) {
            self.backend = backend
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = self.unwrapInboundIn(data)
            if !self.sawHealth, buffer.readableBytesView.starts(with: "GET /health ".utf8) {
                self.sawHealth = true
            }
            if !self.sawHealth {
                let count = buffer.readableBytes
                self.backend.counts.withLockedValue { $0.proxiedBytes += count }
            }
            context.fireChannelRead(data)
        }
    }

    public let name: String
    public let port: Int
    /// How many `/work` requests it serves at once.
    public let slots: Int
    private let group: any EventLoopGroup
    private let counts = NIOLockedValueBox(Counts())
    private let listener = NIOLockedValueBox<(any Channel)?>(nil)
    private let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    private init(name: String, port: Int, slots: Int, group: any EventLoopGroup) {
        self.name = name
        self.port = port
        self.slots = slots
        self.group = group
    }

    /// Starts a backend on 127.0.0.1 (port 0: a free one) serving `slots` `/work` requests at once.
    public static func start(name: String, port: Int = 0, slots: Int = 10, group: any EventLoopGroup) async throws -> TestBackend {
        let chosen = port == 0 ? try freeLoopbackPort() : port
        let backend = TestBackend(name: name, port: chosen, slots: slots, group: group)
        try await backend.listen()
        return backend
    }

    private func listen() async throws {
        let channel = try await ServerBootstrap(group: self.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A gateway opens a connection per request under way: hundreds at once in the crowd
            // tests, more than NIO's default backlog of 128 holds while a busy loop accepts.
            .serverChannelOption(.backlog, value: 1024)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                self.connections.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in
                    self.connections.withLockedValue { $0[id] = nil }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteCounter(backend: self))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(backend: self))
                }
            }
            .bind(host: "127.0.0.1", port: self.port).get()
        self.listener.withLockedValue { $0 = channel }
    }

    /// Requests answered, health checks not counted.
    public var requests: Int {
        self.counts.withLockedValue { $0.requests }
    }

    /// Health checks answered.
    public var healthChecks: Int {
        self.counts.withLockedValue { $0.healthChecks }
    }

    /// Raw bytes received on connections that carried no health check.
    public var proxiedBytes: Int {
        self.counts.withLockedValue { $0.proxiedBytes }
    }

    /// The request targets answered, in order (health checks not counted).
    public var paths: [String] {
        self.counts.withLockedValue { $0.paths }
    }

    /// The most requests (health checks aside) this backend was answering at one time.
    public var peakConcurrentRequests: Int {
        self.counts.withLockedValue { $0.peakInProgress }
    }

    /// Tickets `/sale` still sells; set to restock.
    public var stock: Int {
        get { self.counts.withLockedValue { $0.stock } }
        set { self.counts.withLockedValue { $0.stock = newValue } }
    }

    /// Whether `GET /health` answers 200 (else 503).
    public var healthy: Bool {
        get { self.counts.withLockedValue { $0.healthy } }
        set { self.counts.withLockedValue { $0.healthy = newValue } }
    }

    /// Forgets the counts.
    public func resetCounts() {
        self.counts.withLockedValue { counts in
            let inProgress = counts.inProgress
            counts = Counts()
            counts.inProgress = inProgress
        }
    }

    /// Dies: the listener and every connection close (connects are refused from now on).
    public func stop() async {
        let listener = self.listener.withLockedValue { listener -> (any Channel)? in
            defer { listener = nil }
            return listener
        }
        try? await listener?.close()
        let open = self.connections.withLockedValue { Array($0.values) }
        for channel in open {
            try? await channel.close()
        }
    }

    /// Comes back on the same port.
    public func restart() async throws {
        try await self.listen()
    }
}

/// A raw TCP client for tests that must send bytes no HTTP library would: it writes them and
/// collects everything the server sends until it closes (or `timeout` passes).
public enum RawTCPExchange {
    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer

        let received = NIOLockedValueBox<[UInt8]>([])
        let done: EventLoopPromise<Void>

        init(done: EventLoopPromise<Void>) {
            self.done = done
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = self.unwrapInboundIn(data)
            self.received.withLockedValue { $0.append(contentsOf: buffer.readableBytesView) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.done.succeed()
        }
    }

    /// What came back, and whether the server closed the connection within `timeout`.
    public struct Result: Sendable {
        public let bytes: [UInt8]
        public let closedByServer: Bool

        public var text: String {
            String(decoding: self.bytes, as: UTF8.self)
        }

        /// The status code of the first response, if any.
        public var status: Int? {
            guard self.text.hasPrefix("HTTP/1.") else {
                return nil
            }
            let parts = self.text.split(separator: " ", maxSplits: 2)
            return parts.count >= 2 ? Int(parts[1]) : nil
        }
    }

    /// Connects to `host:port` (from `localAddress` when given), writes `chunks` one after the
    /// other with `pause` between them, and waits for the server to close.
    public static func send(
        _ chunks: [[UInt8]],
        pause: TimeAmount = .zero,
        host: String = "127.0.0.1",
        port: Int,
        from localAddress: String? = nil,
        timeout: TimeAmount = .seconds(5),
        group: any EventLoopGroup
    ) async throws -> Result {
        let loop = group.next()
        let done = loop.makePromise(of: Void.self)
        let collector = Collector(done: done)
        var bootstrap = ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
        if let localAddress {
            bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: localAddress, port: 0))
        }
        let channel = try await bootstrap.connect(host: host, port: port).get()
        for (index, chunk) in chunks.enumerated() {
            if index > 0 && pause > .zero {
                try await Task.sleep(nanoseconds: UInt64(pause.nanoseconds))
            }
            guard channel.isActive else {
                break
            }
            try? await channel.writeAndFlush(ByteBuffer(bytes: chunk))
        }
        let timer = loop.scheduleTask(in: timeout) {
            done.fail(TestSupportError("timed out"))
        }
        let closed = (try? await done.futureResult.get()) != nil
        timer.cancel()
        if !closed {
            try? await channel.close()
        }
        return Result(bytes: collector.received.withLockedValue { $0 }, closedByServer: closed)
    }

    /// `send` for one text (CRLF line endings written explicitly by the caller).
    public static func send(_ text: String, port: Int, group: any EventLoopGroup, timeout: TimeAmount = .seconds(5)) async throws -> Result {
        try await self.send([Array(text.utf8)], port: port, timeout: timeout, group: group)
    }
}

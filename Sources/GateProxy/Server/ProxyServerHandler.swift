import CoreMetrics
import GateCore
import GateRedis
import GateRules
import Logging
import NIOCore
import NIOHTTP1

/// Proxies the requests of one client connection to the backends, one exchange at a time.
///
/// Request phases, each answering locally or passing on: head check (smuggling, sizes) →
/// route → upstream pick (smooth weighted round-robin over healthy weights) → connect (a
/// connect failure is retried on another backend: nothing was sent) → forward, streamed both
/// ways.
///
/// One exchange at a time: pipelined requests that arrive while one is under way are queued
/// (and the socket is not read meanwhile) and replayed in order when it ends. Reading is not
/// paused between ordinary keep-alive requests, which spares two `epoll_ctl` calls per request
/// compared with NIO's `HTTPServerPipelineHandler`. `ChannelShouldQuiesceEvent` (drain) closes
/// an idle connection at once and a busy one after its answer (sent with `Connection: close`).
///
/// Back-pressure: while the upstream connection is not writable the client is not read, and
/// while the client is not writable the upstream is not read; so a slow reader on either side
/// pins at most the socket buffers and the outbound water mark.
///
/// Everything happens on the client connection's event loop, upstream connections included.
final class ProxyServerHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// The request being forwarded (a class: it is updated in place, never copied).
    private final class Exchange {
        let head: HTTPRequestHead
        let upstreamHead: HTTPRequestHead
        let upstream: Upstream
        var tried: [Endpoint] = []
        var backend: BackendKey?
        /// Whether an upstream connection is being sought (from the first body part or end on).
        var connectStarted = false
        var bodyBytes = 0
        var upstreamKeepAlive = true

        init(head: HTTPRequestHead, upstreamHead: HTTPRequestHead, upstream: Upstream) {
            self.head = head
            self.upstreamHead = upstreamHead
            self.upstream = upstream
        }
    }

    private let loop: LoopState
    private let connectionGuard: ConnectionGuard
    private let settings: ProxySettings
    private let scheme: String
    private let logger: Logger
    private var peer: IPAddress
    private var machine: StateMachine
    private var exchange: Exchange?
    private var upstream: UpstreamConnection?
    private var context: ChannelHandlerContext?
    private var reads = HeldReads()
    /// Request parts of pipelined requests waiting for the exchange under way.
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private var replaying = false
    /// Draining: the connection closes once the exchange under way has ended.
    private var quiescing = false
    /// A later pipelined request was malformed: close once the exchange under way has ended.
    private var closeAfterExchange = false
    private var wroteUpstream = false
    private var wroteClient = false
    /// When the upstream's answer head must have arrived (`nil`: no answer awaited).
    private var responseDeadline: NIODeadline?
    /// One timer per connection, re-armed only when it fires early: a fast answer costs a
    /// clock read, not a schedule and a cancel.
    private var responseTimer: Scheduled<Void>?

    init(loop: LoopState, connectionGuard: ConnectionGuard, settings: ProxySettings, peer: IPAddress, scheme: String, logger: Logger) {
        self.loop = loop
        self.connectionGuard = connectionGuard
        self.settings = settings
        self.peer = peer
        self.scheme = scheme
        self.logger = logger
        self.machine = StateMachine(holdLimit: settings.outboundBufferBytes)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: - Client side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        if !self.queued.isEmpty || (!self.machine.isIdle && Self.isHead(part)) {
            // A pipelined request: it waits for the exchange under way.
            self.queued.append(part)
            self.pauseClientReading(.pipelined)
            return
        }
        self.process(part, context: context)
    }

    private static func isHead(_ part: HTTPServerRequestPart) -> Bool {
        if case .head = part {
            return true
        }
        return false
    }

    private func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            self.received(head: head, context: context)
        case .body(let buffer):
            self.received(body: buffer, context: context)
        case .end:
            self.receivedEnd(context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.wroteUpstream {
            self.wroteUpstream = false
            self.upstream?.flush()
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let received = event as? ProxyProtocolHandler.HeaderReceived, let source = received.header.source {
            self.peer = source.address
        } else if event is ChannelShouldQuiesceEvent {
            self.quiescing = true
            if self.machine.isIdle && self.queued.isEmpty {
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The exchange under way ended and the connection stays open: the idle clock starts,
    /// then a drain or an earlier malformed pipelined request closes the connection, or the
    /// queued pipelined requests are replayed in order.
    private func exchangeFinished(context: ChannelHandlerContext) {
        self.exchange = nil
        self.connectionGuard.responseEnded()
        if self.quiescing || self.closeAfterExchange {
            context.close(promise: nil)
            return
        }
        guard !self.replaying else {
            return
        }
        self.replaying = true
        defer { self.replaying = false }
        while let next = self.queued.first {
            if Self.isHead(next) && !self.machine.isIdle {
                return
            }
            self.queued.removeFirst()
            self.process(next, context: context)
        }
        self.resumeClientReading(.pipelined)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.upstream?.resumeReading()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.cancelResponseTimer()
        self.responseTimer?.cancel()
        self.responseTimer = nil
        if self.machine.clientClosed(), let upstream = self.upstream {
            // The client left mid-exchange: the upstream connection holds half an exchange.
            self.upstream = nil
            upstream.close()
        }
        self.exchange = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            self.logger.debug("client connection error", metadata: ["peer": "\(self.peer)", "error": "\(error)"])
            context.close(promise: nil)
            return
        }
        self.logger.debug("malformed request", metadata: ["peer": "\(self.peer)", "error": "\(parserError)"])
        self.settings.metrics.count(.refused)
        if !self.queued.isEmpty || (!self.machine.isIdle && !self.machine.isReceivingRequest) {
            // A later pipelined request is malformed: the one under way still gets its answer.
            self.closeAfterExchange = true
            self.pauseClientReading(.pipelined)
            return
        }
        if self.machine.responseStarted {
            context.close(promise: nil)
            return
        }
        if let upstream = self.upstream {
            self.upstream = nil
            upstream.close()
        }
        self.cancelResponseTimer()
        _ = self.machine.clientClosed()
        let answer = LocalAnswer(status: .badRequest, code: LocalAnswer.Code.badRequest, reason: "malformed HTTP request: \(Self.describe(parserError))")
        self.write(answer, version: .http1_1, keepAlive: false, context: context)
    }

    func read(context: ChannelHandlerContext) {
        if self.reads.allowsRead() {
            context.read()
        }
    }

    private func pauseClientReading(_ reason: HeldReads.Reason = .backPressure) {
        self.reads.pause(reason)
    }

    private func resumeClientReading(_ reason: HeldReads.Reason = .backPressure) {
        if self.reads.resume(reason), let context = self.context {
            context.read()
        }
    }

    private func received(head: HTTPRequestHead, context: ChannelHandlerContext) {
        self.connectionGuard.headReceived()
        let fields = head.headers.map { (name: $0.name, value: $0.value) }
        let framing: RequestHeadCheck.BodyFraming
        switch RequestHeadCheck.check(major: head.version.major, minor: head.version.minor, uri: head.uri, headers: fields, limits: self.settings.headLimits) {
        case .failure(let refusal):
            self.logger.debug("request refused", metadata: ["peer": "\(self.peer)", "status": "\(refusal.status)", "reason": "\(refusal.reason)"])
            // The framing cannot be trusted: answer and close, read nothing more.
            guard self.machine.headAnsweredLocally(keepAlive: false) else {
                return self.protocolViolation(context: context)
            }
            self.settings.metrics.count(.refused)
            let answer = LocalAnswer(status: HTTPResponseStatus(statusCode: refusal.status), code: LocalAnswer.Code.badRequest, reason: refusal.reason)
            self.write(answer, version: head.version, keepAlive: false, context: context)
            return
        case .success(let checked):
            framing = checked
        }
        let routes = self.loop.routes
        guard let route = routes.ruleSet.route(method: head.method.rawValue, path: head.uri), let upstream = routes.upstreams[route.upstream] else {
            let keepAlive = head.isKeepAlive && framing == .none
            guard self.machine.headAnsweredLocally(keepAlive: keepAlive) else {
                return self.protocolViolation(context: context)
            }
            self.settings.metrics.count(.noRoute)
            let answer = LocalAnswer(status: .notFound, code: LocalAnswer.Code.noRoute, reason: "no route for \(head.method.rawValue) \(Self.path(of: head.uri))")
            self.write(answer, version: head.version, keepAlive: keepAlive, context: context)
            return
        }
        guard self.machine.headAccepted(keepAlive: head.isKeepAlive) else {
            return self.protocolViolation(context: context)
        }
        let peerTrusted = routes.resolver.trustedProxies.contains(self.peer)
        var upstreamFields = ForwardingHeaders.upstreamRequest(fields, peer: self.peer, peerTrusted: peerTrusted, scheme: self.scheme, newID: self.loop.nextRequestID())
        var expectsContinue = false
        upstreamFields.removeAll { field in
            guard field.name.equalsASCIICaseInsensitive("expect") else {
                return false
            }
            expectsContinue = field.value.equalsASCIICaseInsensitive("100-continue")
            return true
        }
        switch framing {
        case .chunked:
            upstreamFields.append((name: "Transfer-Encoding", value: "chunked"))
        case .none where head.method == .POST || head.method == .PUT || head.method == .PATCH:
            // Without it NIO's encoder would frame an empty body as chunked.
            upstreamFields.removeAll { $0.name.equalsASCIICaseInsensitive("content-length") }
            upstreamFields.append((name: "Content-Length", value: "0"))
        case .none, .contentLength:
            break
        }
        let upstreamHead = HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: HTTPHeaders(upstreamFields.map { ($0.name, $0.value) }))
        self.exchange = Exchange(head: head, upstreamHead: upstreamHead, upstream: upstream)
        if expectsContinue && framing != .none {
            // The gateway reads the body itself; the client need not wait for the backend.
            context.writeAndFlush(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        // The upstream is sought once the first body part or the end has been decoded: a
        // request whose framing breaks right after the head (a bad first chunk size) never
        // sends a byte to a backend.
    }

    /// Starts looking for an upstream connection unless that has begun.
    private func connectOnce() {
        guard let exchange = self.exchange, !exchange.connectStarted else {
            return
        }
        exchange.connectStarted = true
        self.connectUpstream()
    }

    private func received(body: ByteBuffer, context: ChannelHandlerContext) {
        if let exchange = self.exchange {
            exchange.bodyBytes += body.readableBytes
            if exchange.bodyBytes > self.settings.headLimits.maximumBodyBytes {
                return self.bodyTooLarge(context: context)
            }
        }
        switch self.machine.requestBody(body) {
        case .hold(let pause):
            if pause {
                self.pauseClientReading()
            }
            self.connectOnce()
        case .forward:
            guard let upstream = self.upstream else {
                return
            }
            upstream.write(.body(.byteBuffer(body)))
            self.wroteUpstream = true
            if !upstream.isWritable {
                upstream.flush()
                self.wroteUpstream = false
                self.pauseClientReading()
            }
        case .drop, .forwardEnd, .finishLocal:
            break
        case .protocolViolation:
            self.protocolViolation(context: context)
        }
    }

    private func receivedEnd(context: ChannelHandlerContext) {
        self.connectionGuard.requestEnded()
        switch self.machine.requestEnd() {
        case .forwardEnd:
            self.upstream?.write(.end(nil))
            self.upstream?.flush()
            self.wroteUpstream = false
            self.startResponseTimer()
        case .hold:
            self.connectOnce()
        case .finishLocal(let keepAlive):
            if keepAlive {
                self.exchangeFinished(context: context)
            } else {
                context.close(promise: nil)
            }
        case .drop, .forward:
            break
        case .protocolViolation:
            self.protocolViolation(context: context)
        }
    }

    private func bodyTooLarge(context: ChannelHandlerContext) {
        let limit = self.settings.headLimits.maximumBodyBytes
        if let upstream = self.upstream {
            self.upstream = nil
            upstream.close()
        }
        self.cancelResponseTimer()
        guard !self.machine.responseStarted else {
            context.close(promise: nil)
            return
        }
        _ = self.machine.clientClosed()
        self.settings.metrics.count(.refused)
        let version = self.exchange?.head.version ?? .http1_1
        self.write(LocalAnswer(status: .payloadTooLarge, code: LocalAnswer.Code.badRequest, reason: "body larger than \(limit) bytes"), version: version, keepAlive: false, context: context)
    }

    private func protocolViolation(context: ChannelHandlerContext) {
        self.logger.debug("request parts out of order; closing", metadata: ["peer": "\(self.peer)"])
        context.close(promise: nil)
    }

    // MARK: - Upstream side

    private func connectUpstream() {
        guard let exchange = self.exchange else {
            return
        }
        guard exchange.tried.count < self.settings.maximumConnectAttempts,
              let backend = self.loop.pick(exchange.upstream, excluding: exchange.tried)
        else {
            return self.upstreamUnavailable(status: exchange.tried.isEmpty ? .serviceUnavailable : .badGateway, reason: exchange.tried.isEmpty
                ? "no backend of upstream \(exchange.upstream.name) is available"
                : "cannot connect to a backend of upstream \(exchange.upstream.name)")
        }
        exchange.tried.append(backend.endpoint)
        exchange.backend = BackendKey(upstream: exchange.upstream.name, endpoint: backend.endpoint)
        if let connection = self.loop.pool.takeIdle(backend.endpoint) {
            return self.bind(connection)
        }
        let key = exchange.backend!
        self.loop.pool.connect(backend.endpoint).whenComplete { result in
            switch result {
            case .success(let connection):
                self.bind(connection)
            case .failure(let error):
                self.logger.warning("upstream connect failed", metadata: ["backend": "\(key)", "error": "\(error)"])
                self.settings.metrics.upstreamConnectFailures.increment()
                self.recordOutcome(key, failed: true)
                guard case .connecting = self.machine.state else {
                    return
                }
                self.connectUpstream()
            }
        }
    }

    private func bind(_ connection: UpstreamConnection) {
        switch self.machine.upstreamReady() {
        case .release:
            self.loop.pool.release(connection)
        case .send(let held, let requestEnded):
            guard let exchange = self.exchange else {
                self.loop.pool.release(connection)
                return
            }
            self.upstream = connection
            connection.exchange = self
            connection.write(.head(exchange.upstreamHead))
            for part in held {
                connection.write(part)
            }
            connection.flush()
            if requestEnded {
                self.startResponseTimer()
            }
            if connection.isWritable {
                self.resumeClientReading()
            } else {
                self.pauseClientReading()
            }
        }
    }

    private func upstreamUnavailable(status: HTTPResponseStatus, reason: String) {
        self.perform(self.machine.upstreamUnavailable(), status: status, reason: reason)
    }

    /// Answers locally or closes, as the state machine decided after an upstream failure.
    private func perform(_ action: StateMachine.FailureAction, status: HTTPResponseStatus, reason: String) {
        guard let context = self.context else {
            return
        }
        switch action {
        case .answer(let keepAlive):
            self.settings.metrics.count(.upstreamFailed)
            let version = self.exchange?.head.version ?? .http1_1
            let kept = self.write(LocalAnswer(status: status, code: LocalAnswer.Code.upstreamUnavailable, reason: reason), version: version, keepAlive: keepAlive, context: context)
            if kept, self.machine.isIdle {
                // The exchange is over (the request had ended).
                self.exchangeFinished(context: context)
            }
        case .closeClient:
            context.close(promise: nil)
        case .none:
            break
        }
    }

    private func startResponseTimer() {
        let deadline = NIODeadline.now() + self.settings.upstreamResponseTimeout
        self.responseDeadline = deadline
        if self.responseTimer == nil {
            self.armResponseTimer(at: deadline)
        }
    }

    private func armResponseTimer(at deadline: NIODeadline) {
        guard let context = self.context else {
            return
        }
        self.responseTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.responseTimer = nil
            guard let due = self.responseDeadline else {
                return
            }
            if NIODeadline.now() >= due {
                self.upstreamFailed(status: .gatewayTimeout, reason: "the backend did not answer in time")
            } else {
                self.armResponseTimer(at: due)
            }
        }
    }

    /// No answer is awaited any more (the timer stays armed; it finds nothing due).
    private func cancelResponseTimer() {
        self.responseDeadline = nil
    }

    private func upstreamFailed(status: HTTPResponseStatus, reason: String) {
        self.cancelResponseTimer()
        if let key = self.exchange?.backend {
            self.recordOutcome(key, failed: true)
        }
        if let upstream = self.upstream {
            self.upstream = nil
            upstream.close()
        }
        self.perform(self.machine.upstreamFailed(), status: status, reason: reason)
    }

    private func recordOutcome(_ key: BackendKey, failed: Bool) {
        switch self.loop.recordOutcome(key, failed: failed) {
        case .ejected(let until):
            self.settings.metrics.backendEjections.increment()
            self.logger.warning("backend ejected after failed requests", metadata: [
                "backend": "\(key)", "for": "\(until - MonotonicInstant.now())",
            ])
        case .wentDown, .cameBack, nil:
            break
        }
    }

    // MARK: - Answers

    /// Writes a whole local answer; closes after it unless `keepAlive` (and not draining).
    /// Returns whether the connection stays open.
    @discardableResult
    private func write(_ answer: LocalAnswer, version: HTTPVersion, keepAlive wanted: Bool, context: ChannelHandlerContext) -> Bool {
        let keepAlive = wanted && !self.quiescing && !self.closeAfterExchange
        self.connectionGuard.answerStarted = true
        let body = context.channel.allocator.buffer(string: answer.body)
        context.write(self.wrapOutboundOut(.head(answer.head(version: version, close: !keepAlive))), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            written.assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
        return keepAlive
    }

    private static func path(of uri: String) -> String {
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        return path.count > 64 ? String(path.prefix(64)) + "…" : path
    }

    private static func describe(_ error: HTTPParserError) -> String {
        switch error {
        case .invalidHeaderToken:
            return "invalid character in a header (bare LF, obs-fold, NUL or a bad name)"
        case .invalidChunkSize:
            return "invalid chunk size"
        case .invalidContentLength:
            return "invalid Content-Length"
        case .unexpectedContentLength:
            return "Content-Length together with Transfer-Encoding"
        case .lfExpected:
            return "line ending is not CRLF"
        case .headerOverflow:
            return "header section too large"
        default:
            return "\(error)"
        }
    }
}

// MARK: - UpstreamExchange

extension ProxyServerHandler: UpstreamExchange {
    func upstreamReceived(_ part: HTTPClientResponsePart) {
        guard let context = self.context, let exchange = self.exchange else {
            return
        }
        switch part {
        case .head(let head):
            if head.status.code < 200 {
                // 1xx (103 Early Hints and the like): informational only, not forwarded.
                return
            }
            guard case .forward = self.machine.responseHead() else {
                return
            }
            self.cancelResponseTimer()
            self.settings.metrics.count(.forwarded)
            exchange.upstreamKeepAlive = head.isKeepAlive
            if let key = exchange.backend {
                self.recordOutcome(key, failed: head.status.code >= 500)
            }
            self.connectionGuard.answerStarted = true
            let fields = ForwardingHeaders.downstreamResponse(head.headers.map { (name: $0.name, value: $0.value) })
            var headers = HTTPHeaders(fields.map { ($0.name, $0.value) })
            let clientKeepAlive = exchange.head.isKeepAlive && !self.quiescing
            if !clientKeepAlive {
                headers.add(name: "Connection", value: "close")
            } else if exchange.head.version.minor == 0 {
                headers.add(name: "Connection", value: "keep-alive")
            }
            let version: HTTPVersion = exchange.head.version.minor == 0 ? .http1_0 : .http1_1
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: head.status, headers: headers))), promise: nil)
            self.wroteClient = true
        case .body(let buffer):
            guard case .forward = self.machine.responseBody() else {
                return
            }
            context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            self.wroteClient = true
            if !context.channel.isWritable {
                context.flush()
                self.wroteClient = false
                self.upstream?.pauseReading()
            }
        case .end:
            guard case .finish(let reuseUpstream, let closeClient) = self.machine.responseEnd(upstreamKeepAlive: exchange.upstreamKeepAlive) else {
                return
            }
            if let upstream = self.upstream {
                self.upstream = nil
                if reuseUpstream {
                    self.loop.pool.release(upstream)
                } else {
                    upstream.close()
                }
            }
            self.exchange = nil
            self.wroteClient = false
            let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
            if closeClient || self.quiescing || self.closeAfterExchange {
                written.assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            } else {
                self.exchangeFinished(context: context)
            }
        }
    }

    func upstreamReadComplete() {
        if self.wroteClient {
            self.wroteClient = false
            self.context?.flush()
        }
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable {
            self.resumeClientReading()
        }
    }

    func upstreamClosed(error: (any Error)?) {
        self.upstream = nil
        let reason = error.map { "the backend connection failed: \($0)" } ?? "the backend closed the connection before answering"
        self.upstreamFailed(status: .badGateway, reason: reason)
    }
}

@available(*, unavailable)
extension ProxyServerHandler: Sendable {}

import CoreMetrics
import GateCore
import GateRedis
import GateRules
import Logging
import NIOCore
import NIOHTTP1

/// Proxies the requests of one client connection to the backends, one exchange at a time.
///
/// It reads the client's bytes itself (`HTTP1Head`, `ChunkedDecoder`: no NIO HTTP codec, no
/// part boxed per request) and writes what it understood as new bytes: the upstream head is
/// serialised into one buffer, bodies go on as their data re-framed (a length passes through,
/// chunks are chunked again), the answer's head is written afresh for the client.
///
/// Request phases, each answering locally or passing on: head check (syntax, smuggling,
/// sizes) → route → upstream pick (smooth weighted round-robin over healthy weights) → connect
/// (a connect failure is retried on another backend: nothing was sent) → forward, streamed
/// both ways.
///
/// One exchange at a time: bytes of pipelined requests that arrive while one is under way stay
/// unparsed (and the socket is not read meanwhile) until it ends; a malformed later request is
/// therefore answered only after the one before it. `ChannelShouldQuiesceEvent` (drain) closes
/// an idle connection at once and a busy one after its answer (sent with `Connection: close`).
///
/// Back-pressure: while the upstream connection is not writable the client is not read, and
/// while the client is not writable the upstream is not read; so a slow reader on either side
/// pins at most the socket buffers and the outbound water mark.
///
/// Everything happens on the client connection's event loop, upstream connections included.
final class ProxyServerHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The request being forwarded (a class: it is updated in place, never copied).
    private final class Exchange {
        let method: String
        /// The client's HTTP/1 minor version.
        let minor: Int
        let keepAlive: Bool
        /// The head to send upstream, serialised once (a retry on another backend resends it);
        /// `nil` once sent (the buffer goes back to the loop for the next head).
        var upstreamHead: ByteBuffer?
        let upstream: Upstream
        /// Backends this request could not connect to (left out of the next pick).
        var tried: [Endpoint] = []
        var backend: BackendKey?
        /// Whether an upstream connection is being sought (from the first body part or end on).
        var connectStarted = false
        var bodyBytes = 0
        /// The answer's body is chunked again for the client.
        var rechunk = false
        /// The answer is delimited by closing the client connection (an HTTP/1.0 client).
        var closeAfterAnswer = false
        /// The account's in-flight flag this request holds, given back when the exchange ends.
        var hold: InFlightRegistry.Hold?
        /// The rule whose flag must also be taken in Redis before the request goes on.
        var sharedCheck: InFlightPolicy?
        /// The flag taken in Redis (given back, owner-safe, when the exchange ends).
        var shared: InFlightRegistry.Hold?
        /// Where the request is in the upstream's admission control.
        var admission = AdmissionState.released
        /// From admission to the answer's head (the adaptive limit's sample).
        var serviceTime: Duration?
        /// The backend counted against its `max_in_flight` for this request.
        var countedBackend: BackendKey?
        /// The route's sold-out signals, looked for in the answer.
        var soldOutWatch: SoldOutWatch?

        init(method: String, minor: Int, keepAlive: Bool, upstreamHead: ByteBuffer, upstream: Upstream) {
            self.method = method
            self.minor = minor
            self.keepAlive = keepAlive
            self.upstreamHead = upstreamHead
            self.upstream = upstream
        }
    }

    /// A request's place in its upstream's admission control.
    private enum AdmissionState {
        /// Waiting in the queue under `ticket`.
        case waiting(ticket: UInt64)
        /// Holding a slot since `at`.
        case admitted(at: MonotonicInstant)
        /// Holding nothing (refused, or the slot given back).
        case released
    }

    /// Where the client's byte stream is.
    private enum Reading {
        /// Waiting for (the rest of) a request head; lines before `resumeAt` are checked.
        case head(resumeAt: Int)
        /// A body of known length: `remaining` bytes still to come.
        case length(remaining: Int)
        case chunked(ChunkedDecoder)
        /// The connection is closing: what arrives is dropped.
        case closed
    }

    private static let chunkedEnd = ByteBuffer(string: "0\r\n\r\n")
    private static let continueAnswer = ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n")
    /// Body bytes copied into the answer's head buffer rather than written beside it.
    private static let coalescedBodyBytes = 16 * 1024

    private let loop: LoopState
    private let connectionGuard: ConnectionGuard
    let settings: ProxySettings
    let scheme: String
    let logger: Logger
    /// The longest head read before it is refused (431, or 414 inside the request line).
    private let maximumHeadBytes: Int
    private(set) var peer: IPAddress {
        didSet {
            self.peerText = self.peer.description
        }
    }
    /// `peer` as text, formatted once per connection.
    private(set) var peerText: String
    private var machine: StateMachine
    /// The exchange under way. However it ends (answer complete, client gone, upstream
    /// failure, local answer), dropping it gives back the in-flight flag it holds.
    private var exchange: Exchange? {
        didSet {
            if let old = oldValue, old !== self.exchange {
                self.giveBackFlags(of: old)
                self.giveBackSlot(of: old)
            }
        }
    }
    private var upstream: UpstreamConnection?
    private var context: ChannelHandlerContext?
    /// The channel's allocator, looked up once.
    private var allocator = ByteBufferAllocator()
    private var reads = HeldReads()
    private var reading = Reading.head(resumeAt: 0)
    /// Bytes received and not parsed yet.
    private var inbound: ByteBuffer?
    private var parsing = false
    /// Draining: the connection closes once the exchange under way has ended.
    private var quiescing = false
    private var wroteUpstream = false
    private var wroteClient = false
    /// The answer's head, held back to go out in one buffer with a small body.
    private var pendingClientHead: ByteBuffer?
    /// When the upstream's answer head must have arrived (`nil`: no answer awaited).
    private var responseDeadline: NIODeadline?
    /// One timer per connection, re-armed only when it fires early: a fast answer costs a
    /// clock read, not a schedule and a cancel.
    private var responseTimer: Scheduled<Void>?
    /// What the access log will say about the request under way (only with an access log).
    var access: AccessRecord?
    /// The request counters of the rules the request under way was routed by, and its route.
    private var counting: (counters: GatewayMetrics.RouteCounters, route: Int?)?

    /// The request under way as the access log sees it, filled in as its phases learn it.
    struct AccessRecord {
        let start: MonotonicInstant
        let method: String
        let target: String
        var client: String
        var account: String?
        var route: String?
        var rule: String?
        var upstream: String?
        var status = 0
        var upstreamMicros: Int64?
    }

    init(loop: LoopState, connectionGuard: ConnectionGuard, settings: ProxySettings, peer: IPAddress, scheme: String, logger: Logger) {
        self.loop = loop
        self.connectionGuard = connectionGuard
        self.settings = settings
        self.peer = peer
        self.peerText = peer.description
        self.scheme = scheme
        self.logger = logger
        self.machine = StateMachine(holdLimit: settings.outboundBufferBytes)
        let limits = settings.headLimits
        // Room for the request line, the field bytes and their separators.
        self.maximumHeadBytes = limits.maximumURIBytes + limits.maximumHeaderBytes + 4 * limits.maximumHeaderCount + 64
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.allocator = context.channel.allocator
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: - Client side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        if case .closed = self.reading {
            return
        }
        if var pending = self.inbound, pending.readableBytes > 0 {
            pending.writeBuffer(&bytes)
            self.inbound = pending
        } else {
            self.inbound = bytes
        }
        self.parseInbound(context: context)
    }

    /// Parses request heads and bodies out of the bytes received until they run out, a head
    /// waits for the exchange under way (pipelining), or the connection closes.
    private func parseInbound(context: ChannelHandlerContext) {
        guard !self.parsing else {
            return
        }
        self.parsing = true
        defer { self.parsing = false }
        while var buffer = self.inbound, buffer.readableBytes > 0 {
            switch self.reading {
            case .closed:
                self.inbound = nil
                return
            case .head(let resumeAt):
                guard self.machine.isIdle else {
                    // A pipelined request: it waits for the exchange under way.
                    self.pauseClientReading(.pipelined)
                    return
                }
                if resumeAt == 0 {
                    guard let skip = buffer.withUnsafeReadableBytes({ HTTP1Head.leadingEmptyLines($0) }) else {
                        return
                    }
                    if skip > 0 {
                        buffer.moveReaderIndex(forwardBy: skip)
                        self.inbound = buffer.readableBytes > 0 ? buffer : nil
                        continue
                    }
                }
                switch buffer.withUnsafeReadableBytes({ HTTP1Head.scan($0, resumeAt: resumeAt) }) {
                case .incomplete(let next, let inFirstLine):
                    if inFirstLine && buffer.readableBytes > self.settings.headLimits.maximumURIBytes + 64 {
                        return self.refuse(RequestHeadCheck.Refusal(status: 414, reason: "request target longer than \(self.settings.headLimits.maximumURIBytes) bytes"), minor: 1, context: context)
                    }
                    if buffer.readableBytes > self.maximumHeadBytes {
                        return self.refuse(RequestHeadCheck.Refusal(status: 431, reason: "request head larger than \(self.maximumHeadBytes) bytes"), minor: 1, context: context)
                    }
                    self.reading = .head(resumeAt: next)
                    return
                case .malformed(let reason):
                    return self.refuse(RequestHeadCheck.Refusal(status: 400, reason: "malformed request: \(reason)"), minor: 1, context: context)
                case .complete(let length):
                    let head = buffer.readSlice(length: length)!
                    self.inbound = buffer.readableBytes > 0 ? buffer : nil
                    self.reading = .head(resumeAt: 0)
                    switch self.received(head: head, context: context) {
                    case nil:
                        return
                    case .none?:
                        self.receivedEnd(context: context)
                    case .contentLength(let length)?:
                        self.reading = .length(remaining: length)
                    case .chunked?:
                        self.reading = .chunked(ChunkedDecoder())
                    }
                }
            case .length(let remaining):
                let take = min(remaining, buffer.readableBytes)
                let body = buffer.readSlice(length: take)!
                self.inbound = buffer.readableBytes > 0 ? buffer : nil
                let ended = take == remaining
                self.reading = ended ? .head(resumeAt: 0) : .length(remaining: remaining - take)
                self.received(body: body, payloadBytes: take, context: context)
                if ended, case .head = self.reading {
                    self.receivedEnd(context: context)
                }
            case .chunked(var decoder):
                let read = buffer.readChunked(with: &decoder)
                self.reading = .chunked(decoder)
                self.inbound = buffer.readableBytes > 0 ? buffer : nil
                switch read {
                case .needMore:
                    break
                case .data(let data):
                    self.received(body: Self.chunk(data, allocator: self.allocator), payloadBytes: data.readableBytes, context: context)
                case .end:
                    self.reading = .head(resumeAt: 0)
                    self.received(body: Self.chunkedEnd, payloadBytes: 0, context: context)
                    if case .head = self.reading {
                        self.receivedEnd(context: context)
                    }
                case .malformed(let reason):
                    return self.malformedBody(reason, context: context)
                }
            }
        }
    }

    /// `data` as one chunk of a chunked body.
    private static func chunk(_ data: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var framed = allocator.buffer(capacity: data.readableBytes + 20)
        framed.writeString(String(data.readableBytes, radix: 16))
        framed.writeStaticString("\r\n")
        framed.writeImmutableBuffer(data)
        framed.writeStaticString("\r\n")
        return framed
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
            if self.machine.isIdle {
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The exchange under way ended and the connection stays open: the idle clock starts,
    /// then a drain closes the connection, or the bytes of pipelined requests are parsed.
    private func exchangeFinished(context: ChannelHandlerContext) {
        self.exchange = nil
        self.connectionGuard.responseEnded()
        if self.quiescing {
            self.reading = .closed
            context.close(promise: nil)
            return
        }
        self.parseInbound(context: context)
        if self.machine.isIdle {
            self.resumeClientReading(.pipelined)
        }
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
        self.reading = .closed
        self.inbound = nil
        if self.access != nil {
            // The client left before its answer was complete.
            self.logAccess(status: 499, decision: "client_closed")
        }
        if self.machine.clientClosed(), let upstream = self.upstream {
            // The client left mid-exchange: the upstream connection holds half an exchange.
            self.upstream = nil
            upstream.close()
        }
        self.exchange = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("client connection error", metadata: ["peer": "\(self.peer)", "error": "\(error)"])
        self.reading = .closed
        context.close(promise: nil)
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

    /// A head that cannot be forwarded: answered with `refusal` and the connection closed
    /// (its framing cannot be trusted, so nothing more is read).
    private func refuse(_ refusal: RequestHeadCheck.Refusal, minor: Int, context: ChannelHandlerContext) {
        self.logger.debug("request refused", metadata: ["peer": "\(self.peer)", "status": "\(refusal.status)", "reason": "\(refusal.reason)"])
        self.reading = .closed
        self.inbound = nil
        guard self.machine.headAnsweredLocally(keepAlive: false) else {
            return self.protocolViolation(context: context)
        }
        self.count(.refused)
        self.logAccess(status: refusal.status, decision: GatewayMetrics.Decision.refused.rawValue)
        let answer = LocalAnswer(status: HTTPResponseStatus(statusCode: refusal.status), code: LocalAnswer.Code.badRequest, reason: refusal.reason)
        self.write(answer, minor: minor, keepAlive: false, context: context)
    }

    /// Counts the request under way as `decision`, on its route.
    private func count(_ decision: GatewayMetrics.Decision) {
        let counting = self.counting ?? (self.loop.routes.counters, nil)
        self.settings.metrics.count(decision, route: counting.route, in: counting.counters)
    }

    /// Writes the access log's line for the request under way (when there is an access log);
    /// a refused head that could not be parsed gets a line without method and target.
    private func logAccess(status: Int, decision: String) {
        guard let log = self.settings.accessLog else {
            return
        }
        let now = MonotonicInstant.now()
        let record = self.access ?? AccessRecord(start: now, method: "", target: "", client: self.peerText)
        self.access = nil
        let micros = (now - record.start).nanosecondsClamped / 1_000
        log.record(AccessLog.Entry(
            time: AccessLog.now(), client: record.client, account: record.account, method: record.method,
            target: record.target, route: record.route, decision: decision, rule: record.rule, upstream: record.upstream,
            status: status, micros: micros, upstreamMicros: record.upstreamMicros
        ))
    }

    /// Handles a complete request head; returns its body framing, or `nil` when the head was
    /// refused (the connection closes).
    private func received(head bytes: ByteBuffer, context: ChannelHandlerContext) -> RequestHeadCheck.BodyFraming? {
        self.connectionGuard.headReceived()
        let head: HTTP1Head.Request
        switch bytes.withUnsafeReadableBytes({ HTTP1Head.parseRequest($0) }) {
        case .failure(let refusal):
            self.refuse(refusal, minor: 1, context: context)
            return nil
        case .success(let parsed):
            head = parsed
        }
        let minor = head.major == 1 && head.minor == 0 ? 0 : 1
        if self.settings.accessLog != nil {
            self.access = AccessRecord(start: .now(), method: head.method, target: head.target, client: self.peerText)
        }
        let framing: RequestHeadCheck.BodyFraming
        switch RequestHeadCheck.check(major: head.major, minor: head.minor, uri: head.target, headers: head.fields, limits: self.settings.headLimits) {
        case .failure(let refusal):
            self.refuse(refusal, minor: minor, context: context)
            return nil
        case .success(let checked):
            framing = checked
        }
        let keepAlive = head.isKeepAlive
        let routes = self.loop.routes
        self.counting = (routes.counters, nil)
        // Byte-wise, against prefixes made once (a concatenation here would allocate per request).
        let target = head.target.utf8
        if target.elementsEqual(Self.verifyPath.utf8) || target.starts(with: Self.verifyQueryPrefix.utf8) {
            let verdict = self.verify(target: head.target, fields: head.fields, rules: routes.ruleSet, resolver: routes.resolver)
            return self.answerHead(verdict.answer, decision: verdict.decision, minor: minor, keepAlive: keepAlive, framing: framing, context: context)
        }
        if target.starts(with: Self.captchaQueryPrefix.utf8) {
            let image = self.captchaImage(target: head.target, fields: head.fields, resolver: routes.resolver)
            return self.answerHead(image.answer, decision: image.decision, minor: minor, keepAlive: keepAlive, framing: framing, context: context)
        }
        let routeIndex = routes.ruleSet.routeIndex(method: head.method, path: head.target)
        guard let routeIndex, case let route = routes.ruleSet.routes[routeIndex], let upstream = routes.upstreams[route.upstream] else {
            let answer = LocalAnswer(status: .notFound, code: LocalAnswer.Code.noRoute, reason: "no route for \(head.method) \(Self.path(of: head.target))")
            // (The access log says no route.)
            return self.answerHead(answer, decision: .noRoute, minor: minor, keepAlive: keepAlive && framing == .none, framing: framing, context: context)
        }
        self.access?.route = route.id
        self.counting = (routes.counters, routeIndex)
        // The warm-up gate: after a (re)start, nothing before the dependencies are warm, then a
        // rising share.
        if !self.settings.warmup.admits(draw: Double.random(in: 0..<1), now: .now()) {
            let answer = self.warmupAnswer(now: .now())
            return self.answerHead(answer, decision: .warmupRefused, minor: minor, keepAlive: keepAlive, framing: framing, context: context)
        }
        // Deny and allow lists, by client network (before the account: a denied network costs
        // no token check).
        var allowed = false
        var client: IPAddress?
        if !routes.ruleSet.deny.isEmpty || !routes.ruleSet.allow.isEmpty {
            let address = self.clientAddress(fields: head.fields, resolver: routes.resolver)
            if routes.ruleSet.deny.contains(address) {
                return self.answerHead(Self.deniedAnswer, decision: .denied, minor: minor, keepAlive: keepAlive, framing: framing, context: context)
            }
            allowed = routes.ruleSet.allow.contains(address)
            client = address
            if address != self.peer {
                self.access?.client = address.description
            }
        }
        // The sold-out latch: once the sale is over the gateway answers it, letting one request
        // through every recheck (or reading the stock in Redis instead).
        var probe = false
        if let policy = route.soldOut {
            let probes = policy.stock == nil || !self.settings.hasRedis
            switch self.settings.soldOut.decide(route: route.id, probes: probes, now: .now()) {
            case .forward:
                break
            case .probe:
                probe = true
            case .soldOut(let held):
                return self.answerHead(held.answer, decision: .soldOut, minor: minor, keepAlive: keepAlive, framing: framing, context: context)
            }
        }
        // A probe refused before it reaches a backend asked nobody: the next request probes.
        let probeUnused = { [settings = self.settings] in
            if probe {
                settings.soldOut.probeUnused(route: route.id, now: .now())
            }
        }
        let peerTrusted = routes.resolver.trustedProxies.contains(self.peer)
        let identity = routes.ruleSet.identity
        let account: String?
        switch Self.account(in: head.fields, identity: identity, peerTrusted: peerTrusted) {
        case .failure(let refusal):
            probeUnused()
            self.refuse(refusal, minor: minor, context: context)
            return nil
        case .success(let found):
            account = found
        }
        self.access?.account = account
        var holdsPass = false
        if !allowed, let refusal = self.checkWindows(
            method: head.method, route: route, rules: routes.ruleSet, resolver: routes.resolver,
            fields: head.fields, account: account, client: client, holdsPass: &holdsPass
        ) {
            probeUnused()
            self.access?.rule = refusal.rule
            return self.answerHead(refusal.answer, decision: refusal.decision, minor: minor, keepAlive: keepAlive, framing: framing, context: context)
        }
        var hold: InFlightRegistry.Hold?
        if !allowed, let policy = route.inFlight, let account {
            if let taken = self.settings.inFlight.acquire(account, ttl: policy.ttl) {
                hold = taken
            } else if policy.mode == .enforce {
                probeUnused()
                return self.answerHead(Self.inFlightAnswer, decision: .inFlightRefused, minor: minor, keepAlive: keepAlive, framing: framing, context: context)
            } else {
                self.settings.metrics.inFlightShadowed.increment()
                self.logger.debug("in-flight rule (shadow) would refuse", metadata: ["peer": "\(self.peerText)", "account": "\(account)"])
            }
        }
        // Admission: a slot of the upstream's limit, a place in its queue, or 503 at once.
        let admittedAt = MonotonicInstant.now()
        var admission = AdmissionState.admitted(at: admittedAt)
        let upstreamName = upstream.name
        switch self.loop.admit(upstream, priority: holdsPass ? .high : route.priority, now: admittedAt) {
        case .admitted:
            break
        case .queued(let ticket):
            admission = .waiting(ticket: ticket)
            self.loop.admission.wait(upstream: upstreamName, ticket: ticket) { ticket, refusal in
                self.admissionDecided(ticket: ticket, refusal: refusal, upstream: upstreamName)
            }
        case .refused(let reason):
            if let hold {
                self.settings.inFlight.release(hold)
            }
            self.settings.metrics.countShed(reason)
            probeUnused()
            return self.answerHead(Self.shedAnswers[reason]!, decision: .shed, minor: minor, keepAlive: keepAlive, framing: framing, context: context)
        }
        guard self.machine.headAccepted(keepAlive: keepAlive) else {
            if let hold {
                self.settings.inFlight.release(hold)
            }
            switch admission {
            case .waiting(let ticket):
                self.loop.admission.withdraw(upstream: upstreamName, ticket: ticket)
            case .admitted:
                self.loop.admission.finish(upstream: upstreamName, serviceTime: nil, now: admittedAt)
            case .released:
                break
            }
            probeUnused()
            self.protocolViolation(context: context)
            return nil
        }
        // An identity header that is not believed (not from a trusted proxy) does not reach the
        // backend either: it would act for an account nobody vouched for.
        let dropIdentity = identity.map { $0.trust == .proxies && !peerTrusted } ?? false
        var expectsContinue = false
        let addEmptyLength = framing == .none && (head.method == "POST" || head.method == "PUT" || head.method == "PATCH")
        var upstreamHead = self.loop.borrowBuffer(capacity: bytes.readableBytes + 160, allocator: self.allocator)
        upstreamHead.writeString(head.method)
        upstreamHead.writeStaticString(" ")
        upstreamHead.writeString(head.target)
        upstreamHead.writeStaticString(" HTTP/1.1\r\n")
        let added = ForwardingHeaders.upstreamFields(head.fields, peer: self.peerText, peerTrusted: peerTrusted, scheme: self.scheme) { field in
            if field.name.equalsASCIICaseInsensitive("expect") {
                // The gateway reads the body itself; the client need not wait for the backend.
                expectsContinue = field.value.equalsASCIICaseInsensitive("100-continue")
                return
            }
            if addEmptyLength && field.name.equalsASCIICaseInsensitive("content-length") {
                return
            }
            if dropIdentity, let identity, field.name.equalsASCIICaseInsensitive(identity.headerLowercased) {
                return
            }
            upstreamHead.writeString(field.name)
            upstreamHead.writeStaticString(": ")
            upstreamHead.writeString(field.value)
            upstreamHead.writeStaticString("\r\n")
        }
        upstreamHead.writeStaticString("X-Forwarded-For: ")
        upstreamHead.writeString(added.forwardedFor)
        upstreamHead.writeStaticString("\r\nX-Forwarded-Proto: ")
        upstreamHead.writeString(added.forwardedProto)
        upstreamHead.writeStaticString("\r\nX-Request-Id: ")
        if let requestID = added.requestID {
            upstreamHead.writeString(requestID)
        } else {
            self.loop.writeNextRequestID(into: &upstreamHead)
        }
        upstreamHead.writeStaticString("\r\n")
        if framing == .chunked {
            upstreamHead.writeStaticString("Transfer-Encoding: chunked\r\n")
        } else if addEmptyLength {
            // A backend may wait for a body of a POST without a length.
            upstreamHead.writeStaticString("Content-Length: 0\r\n")
        }
        upstreamHead.writeStaticString("\r\n")
        let exchange = Exchange(method: head.method, minor: minor, keepAlive: keepAlive, upstreamHead: upstreamHead, upstream: upstream)
        exchange.hold = hold
        if hold != nil, self.settings.flagStore != nil {
            exchange.sharedCheck = route.inFlight
        }
        exchange.admission = admission
        if let policy = route.soldOut {
            exchange.soldOutWatch = SoldOutWatch(policy: policy, route: route.id, probe: probe)
        }
        self.exchange = exchange
        if expectsContinue && framing != .none {
            context.writeAndFlush(self.wrapOutboundOut(Self.continueAnswer), promise: nil)
        }
        // The upstream is sought once the first body part or the end has been decoded: a
        // request whose framing breaks right after the head (a bad first chunk size) never
        // sends a byte to a backend.
        return framing
    }

    /// Answers a request head locally with `answer` (counted as `decision`). A body still coming
    /// is read and dropped; the connection stays open when `keepAlive`. Returns the framing the
    /// body is read with, or `nil` when the connection closes.
    private func answerHead(
        _ answer: LocalAnswer,
        decision: GatewayMetrics.Decision,
        minor: Int,
        keepAlive: Bool,
        framing: RequestHeadCheck.BodyFraming,
        context: ChannelHandlerContext
    ) -> RequestHeadCheck.BodyFraming? {
        guard self.machine.headAnsweredLocally(keepAlive: keepAlive) else {
            self.protocolViolation(context: context)
            return nil
        }
        self.count(decision)
        self.logAccess(status: Int(answer.status.code), decision: decision.rawValue)
        self.write(answer, minor: minor, keepAlive: keepAlive, context: context)
        return framing
    }

    /// Starts looking for an upstream connection unless that has begun.
    private func connectOnce() {
        guard let exchange = self.exchange, !exchange.connectStarted else {
            return
        }
        exchange.connectStarted = true
        guard case .admitted = exchange.admission else {
            // Goes on once admitted (`admissionDecided`).
            return
        }
        self.proceed(exchange)
    }

    /// An admitted request whose body has begun (or ended): the account's flag in Redis if the
    /// route asks for it, then the upstream.
    private func proceed(_ exchange: Exchange) {
        if let policy = exchange.sharedCheck, let hold = exchange.hold, let store = self.settings.flagStore {
            exchange.sharedCheck = nil
            return self.takeSharedFlag(hold, policy: policy, store: store, for: exchange)
        }
        self.connectUpstream()
    }

    /// The queue let a waiting request in (`refusal` nil) or refused it.
    private func admissionDecided(ticket: UInt64, refusal: AdmissionQueue<UInt64>.Refusal?, upstream: String) {
        guard let exchange = self.exchange, case .waiting(let waiting) = exchange.admission, waiting == ticket else {
            // Not this connection's request any more: a slot given to it goes back.
            if refusal == nil {
                self.loop.admission.finish(upstream: upstream, serviceTime: nil, now: .now())
            }
            return
        }
        if let refusal {
            exchange.admission = .released
            self.settings.metrics.countShed(refusal)
            self.perform(self.machine.upstreamUnavailable(), answer: Self.shedAnswers[refusal]!, decision: .shed)
            return
        }
        exchange.admission = .admitted(at: .now())
        if exchange.connectStarted {
            self.proceed(exchange)
        }
    }

    /// Gives back what `exchange` holds in the admission control: its queue place or its slot
    /// (with its service time for the adaptive limit), and its backend's count.
    private func giveBackSlot(of exchange: Exchange) {
        // The backend first: finishing the slot may start the next request at once, and it may
        // pick this backend.
        if let key = exchange.countedBackend {
            exchange.countedBackend = nil
            self.loop.ended(key, capped: true)
        }
        let name = exchange.upstream.name
        switch exchange.admission {
        case .waiting(let ticket):
            self.loop.admission.withdraw(upstream: name, ticket: ticket)
        case .admitted:
            self.loop.admission.finish(upstream: name, serviceTime: exchange.serviceTime, now: .now())
        case .released:
            break
        }
        exchange.admission = .released
    }

    /// Asks Redis for the account's flag (this gateway holds it locally already), then goes on
    /// to the upstream, answers 429, or follows the rule's `on_store_error`.
    private func takeSharedFlag(_ hold: InFlightRegistry.Hold, policy: InFlightPolicy, store: RedisFlagStore, for exchange: Exchange) {
        guard let context = self.context else {
            return
        }
        let loop = context.eventLoop
        store.acquire(hold.account, token: hold.token, ttl: policy.ttl, store: policy.store, on: loop)
            .hop(to: loop)
            .assumeIsolated()
            .whenComplete { result in
                guard self.exchange === exchange, case .connecting = self.machine.state else {
                    // The exchange ended meanwhile (the client went away): give back what was taken.
                    if case .success(true) = result {
                        store.release(hold.account, token: hold.token, on: loop).whenComplete { _ in }
                    }
                    return
                }
                switch result {
                case .success(true):
                    exchange.shared = hold
                    self.connectUpstream()
                case .success(false):
                    if policy.mode == .shadow {
                        self.settings.metrics.inFlightShadowed.increment()
                        self.connectUpstream()
                    } else {
                        self.perform(self.machine.upstreamUnavailable(), answer: Self.inFlightAnswer, decision: .inFlightRefused)
                    }
                case .failure(let error):
                    self.settings.metrics.inFlightStoreErrors.increment()
                    self.logger.debug("in-flight flag not checked in Redis", metadata: [
                        "account": "\(hold.account)", "error": "\(error)", "on_store_error": "\(policy.onStoreError)",
                    ])
                    switch policy.onStoreError {
                    case .local:
                        self.connectUpstream()
                    case .open:
                        exchange.hold = nil
                        self.settings.inFlight.release(hold)
                        self.connectUpstream()
                    case .closed:
                        self.perform(self.machine.upstreamUnavailable(), answer: Self.storeUnavailableAnswer, decision: .upstreamFailed)
                    }
                }
            }
    }

    /// Gives back the in-flight flags `exchange` holds: this gateway's, and Redis's (owner-safe;
    /// a failure leaves the key to its TTL).
    private func giveBackFlags(of exchange: Exchange) {
        if let hold = exchange.hold {
            exchange.hold = nil
            self.settings.inFlight.release(hold)
        }
        if let hold = exchange.shared, let flagStore = self.settings.flagStore, let loop = self.context?.eventLoop {
            exchange.shared = nil
            let logger = self.logger
            flagStore.release(hold.account, token: hold.token, on: loop).whenFailure { error in
                logger.debug("in-flight flag not given back in Redis; it lapses at its TTL", metadata: [
                    "account": "\(hold.account)", "error": "\(error)",
                ])
            }
        }
    }

    /// Body bytes framed for the upstream, carrying `payloadBytes` of the client's data.
    private func received(body: ByteBuffer, payloadBytes: Int, context: ChannelHandlerContext) {
        if let exchange = self.exchange {
            exchange.bodyBytes += payloadBytes
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
            upstream.write(body)
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
            self.upstream?.flush()
            self.wroteUpstream = false
            self.startResponseTimer()
        case .hold:
            self.connectOnce()
        case .finishLocal(let keepAlive):
            if keepAlive {
                self.exchangeFinished(context: context)
            } else {
                self.reading = .closed
                context.close(promise: nil)
            }
        case .drop, .forward:
            break
        case .protocolViolation:
            self.protocolViolation(context: context)
        }
    }

    /// The chunked framing of a body broke: 400 unless the answer has begun (then just close).
    private func malformedBody(_ reason: String, context: ChannelHandlerContext) {
        self.logger.debug("malformed request body", metadata: ["peer": "\(self.peer)", "reason": "\(reason)"])
        self.abandonRequest(LocalAnswer(status: .badRequest, code: LocalAnswer.Code.badRequest, reason: "malformed request body: \(reason)"), context: context)
    }

    private func bodyTooLarge(context: ChannelHandlerContext) {
        let limit = self.settings.headLimits.maximumBodyBytes
        self.abandonRequest(LocalAnswer(status: .payloadTooLarge, code: LocalAnswer.Code.badRequest, reason: "body larger than \(limit) bytes"), context: context)
    }

    /// The request body cannot go on: stop reading, drop the upstream exchange, and answer
    /// `answer` and close — or just close when the upstream's answer has begun.
    private func abandonRequest(_ answer: LocalAnswer, context: ChannelHandlerContext) {
        self.count(.refused)
        self.logAccess(status: self.machine.responseStarted ? self.access?.status ?? 0 : Int(answer.status.code), decision: GatewayMetrics.Decision.refused.rawValue)
        self.reading = .closed
        self.inbound = nil
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
        self.write(answer, minor: self.exchange?.minor ?? 1, keepAlive: false, context: context)
    }

    private func protocolViolation(context: ChannelHandlerContext) {
        self.logger.debug("request parts out of order; closing", metadata: ["peer": "\(self.peer)"])
        self.reading = .closed
        context.close(promise: nil)
    }

    // MARK: - Upstream side

    private func connectUpstream() {
        guard let exchange = self.exchange else {
            return
        }
        if let counted = exchange.countedBackend {
            // A retry: the backend that could not be reached no longer counts this request.
            exchange.countedBackend = nil
            self.loop.ended(counted, capped: true)
        }
        guard exchange.tried.count < self.settings.maximumConnectAttempts,
              let backend = self.loop.pick(exchange.upstream, excluding: exchange.tried)
        else {
            return self.upstreamUnavailable(status: exchange.tried.isEmpty ? .serviceUnavailable : .badGateway, reason: exchange.tried.isEmpty
                ? "no backend of upstream \(exchange.upstream.name) is available"
                : "cannot connect to a backend of upstream \(exchange.upstream.name)")
        }
        exchange.backend = BackendKey(upstream: exchange.upstream.name, endpoint: backend.endpoint)
        if backend.maximumInFlight != nil {
            exchange.countedBackend = exchange.backend
        }
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
                guard case .connecting = self.machine.state, let exchange = self.exchange else {
                    return
                }
                exchange.tried.append(key.endpoint)
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
            connection.begin(self, method: exchange.method)
            if let head = exchange.upstreamHead {
                exchange.upstreamHead = nil
                connection.write(head)
                self.loop.returnBuffer(head)
            }
            for bytes in held {
                connection.write(bytes)
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
        let answer = LocalAnswer(status: status, code: LocalAnswer.Code.upstreamUnavailable, reason: reason)
        self.perform(action, answer: answer, decision: .upstreamFailed)
    }

    /// Answers `answer` (counted as `decision`) or closes, as the state machine decided.
    private func perform(_ action: StateMachine.FailureAction, answer: LocalAnswer, decision: GatewayMetrics.Decision) {
        guard let context = self.context else {
            return
        }
        switch action {
        case .answer(let keepAlive):
            self.count(decision)
            self.logAccess(status: Int(answer.status.code), decision: decision.rawValue)
            let minor = self.exchange?.minor ?? 1
            let kept = self.write(answer, minor: minor, keepAlive: keepAlive, context: context)
            if kept, self.machine.isIdle {
                // The exchange is over (the request had ended).
                self.exchangeFinished(context: context)
            }
        case .closeClient:
            // The answer had begun: it is cut short.
            self.logAccess(status: self.access?.status ?? 0, decision: decision.rawValue)
            self.reading = .closed
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
    private func write(_ answer: LocalAnswer, minor: Int, keepAlive wanted: Bool, context: ChannelHandlerContext) -> Bool {
        let keepAlive = wanted && !self.quiescing
        self.connectionGuard.answerStarted = true
        let bytes = answer.bytes(minor: minor, close: !keepAlive, allocator: self.allocator)
        if keepAlive {
            context.writeAndFlush(self.wrapOutboundOut(bytes), promise: nil)
        } else {
            context.writeAndFlush(self.wrapOutboundOut(bytes)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
        return keepAlive
    }

    private static func path(of uri: String) -> String {
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        return path.count > 64 ? String(path.prefix(64)) + "…" : path
    }
}

// MARK: - UpstreamExchange

extension ProxyServerHandler: UpstreamExchange {
    func upstreamHead(_ head: HTTP1ResponseHead, bytes: ByteBuffer) {
        guard self.context != nil, let exchange = self.exchange else {
            return
        }
        guard case .forward = self.machine.responseHead() else {
            return
        }
        self.cancelResponseTimer()
        self.count(.forwarded)
        if case .admitted(let at) = exchange.admission {
            let serviceTime = MonotonicInstant.now() - at
            exchange.serviceTime = serviceTime
            if let key = exchange.backend {
                self.loop.recordResponseTime(serviceTime, backend: key, metrics: self.settings.metrics)
            }
            if self.access != nil {
                self.access!.upstreamMicros = serviceTime.nanosecondsClamped / 1_000
            }
        }
        if self.access != nil {
            self.access!.status = head.status
            self.access!.upstream = exchange.backend?.description
        }
        exchange.soldOutWatch?.head(head, bytes: bytes)
        if let key = exchange.backend {
            self.recordOutcome(key, failed: head.status >= 500)
        }
        self.connectionGuard.answerStarted = true
        // The body's framing towards the client: a length as it was (normalised), chunks
        // chunked again; for an HTTP/1.0 client a chunked or close-delimited body ends with the
        // connection.
        var length: Int?
        switch head.framing {
        case .none:
            break
        case .contentLength(let value):
            length = value
        case .chunked, .untilClose:
            if exchange.minor == 1 {
                exchange.rechunk = true
            } else {
                exchange.closeAfterAnswer = true
            }
        }
        let clientKeepAlive = exchange.keepAlive && !self.quiescing && !exchange.closeAfterAnswer
        var buffer = self.loop.borrowBuffer(capacity: bytes.readableBytes + 64, allocator: self.allocator)
        buffer.writeStaticString(exchange.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        bytes.withUnsafeReadableBytes { raw in
            // The status code and reason as read (both checked by the parser).
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[9..<12]))
            buffer.writeStaticString(" ")
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[head.reason]))
            buffer.writeStaticString("\r\n")
            for field in head.forwarded {
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[field.name]))
                buffer.writeStaticString(": ")
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[field.value]))
                buffer.writeStaticString("\r\n")
            }
        }
        if let length {
            buffer.writeStaticString("Content-Length: ")
            buffer.writeString(String(length))
            buffer.writeStaticString("\r\n")
        } else if exchange.rechunk {
            buffer.writeStaticString("Transfer-Encoding: chunked\r\n")
        }
        if !clientKeepAlive {
            buffer.writeStaticString("Connection: close\r\n")
        } else if exchange.minor == 0 {
            buffer.writeStaticString("Connection: keep-alive\r\n")
        }
        buffer.writeStaticString("\r\n")
        // Written with the first body bytes (one buffer, one write for a small answer) or at
        // the end of this read.
        self.pendingClientHead = buffer
        self.wroteClient = true
    }

    /// Writes the answer's head if it is still held back.
    private func writePendingHead(context: ChannelHandlerContext) {
        if let head = self.pendingClientHead {
            self.pendingClientHead = nil
            context.write(self.wrapOutboundOut(head), promise: nil)
            self.loop.returnBuffer(head)
        }
    }

    func upstreamBody(_ data: ByteBuffer) {
        guard let context = self.context, let exchange = self.exchange, data.readableBytes > 0 else {
            return
        }
        guard case .forward = self.machine.responseBody() else {
            return
        }
        exchange.soldOutWatch?.body(data)
        if var head = self.pendingClientHead, !exchange.rechunk, data.readableBytes <= Self.coalescedBodyBytes {
            self.pendingClientHead = nil
            head.writeImmutableBuffer(data)
            context.write(self.wrapOutboundOut(head), promise: nil)
            self.loop.returnBuffer(head)
        } else {
            self.writePendingHead(context: context)
            let bytes = exchange.rechunk ? Self.chunk(data, allocator: self.allocator) : data
            context.write(self.wrapOutboundOut(bytes), promise: nil)
        }
        self.wroteClient = true
        if !context.channel.isWritable {
            context.flush()
            self.wroteClient = false
            self.upstream?.pauseReading()
        }
    }

    func upstreamEnd(reusable: Bool) {
        guard let context = self.context, let exchange = self.exchange else {
            return
        }
        guard case .finish(let reuseUpstream, let closeClient) = self.machine.responseEnd(upstreamKeepAlive: reusable) else {
            return
        }
        if let watch = exchange.soldOutWatch {
            exchange.soldOutWatch = nil
            self.settle(watch, backend: exchange.backend, serving: self.loop.servingBackends(of: exchange.upstream))
        }
        self.logAccess(status: self.access?.status ?? 0, decision: GatewayMetrics.Decision.forwarded.rawValue)
        if let upstream = self.upstream {
            self.upstream = nil
            if reuseUpstream {
                self.loop.pool.release(upstream)
            } else {
                upstream.close()
            }
        }
        self.wroteClient = false
        self.writePendingHead(context: context)
        if closeClient || self.quiescing || exchange.closeAfterAnswer {
            self.exchange = nil
            self.reading = .closed
            let last = exchange.rechunk ? Self.chunkedEnd : self.allocator.buffer(capacity: 0)
            context.writeAndFlush(self.wrapOutboundOut(last)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            if exchange.rechunk {
                context.write(self.wrapOutboundOut(Self.chunkedEnd), promise: nil)
            }
            context.flush()
            self.exchangeFinished(context: context)
        }
    }

    func upstreamReadComplete() {
        if self.wroteClient, let context = self.context {
            self.wroteClient = false
            self.writePendingHead(context: context)
            context.flush()
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

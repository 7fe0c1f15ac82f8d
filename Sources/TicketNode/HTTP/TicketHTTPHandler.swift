import GateRedis
import NIOCore
import NIOHTTP1

/// Serves the ticket node's HTTP API on one connection.
///
/// `HTTPServerPipelineHandler` (in front) hands over one request at a time and holds the next
/// until this one's response has ended, so answering asynchronously keeps keep-alive order.
///
/// - `POST|GET /buy/ticket` (account in `X-Account-Id`): local share, then the sale's script.
/// - `POST /orders/{id}/pay` (same header), `GET /orders/{id}`.
/// - `GET /health` (200 while Redis answers), `GET /stock`.
final class TicketHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The largest request body accepted (the API takes none).
    static let maximumBodyBytes = 64 * 1024

    private enum State {
        /// Waiting for a request head.
        case idle
        /// Reading the body of `head`; `tooLarge` once it passed the limit.
        case receiving(HTTPRequestHead, tooLarge: Bool)
        /// The response is being computed or written.
        case responding
    }

    private let node: TicketNodeContext
    private var state: State = .idle
    private var bodyBytes = 0
    /// When the current request's end arrived (the stat log's latency starts here).
    private var received = NIODeadline.now()

    init(node: TicketNodeContext) {
        self.node = node
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.bodyBytes = 0
            self.state = .receiving(head, tooLarge: false)
        case .body(let buffer):
            guard case .receiving(let head, let tooLarge) = self.state else {
                return
            }
            self.bodyBytes += buffer.readableBytes
            if !tooLarge && self.bodyBytes > Self.maximumBodyBytes {
                self.state = .receiving(head, tooLarge: true)
            }
        case .end:
            guard case .receiving(let head, let tooLarge) = self.state else {
                return
            }
            self.state = .responding
            if self.node.statLog != nil {
                self.received = .now()
            }
            if tooLarge {
                self.respond(context: context, head: head, with: context.eventLoop.makeSucceededFuture(
                    .error(.payloadTooLarge, code: -413, "request body larger than \(Self.maximumBodyBytes) bytes")
                ))
                return
            }
            self.respond(context: context, head: head, with: self.node.route(head, on: context.eventLoop))
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, with response: EventLoopFuture<TicketResponse>) {
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let boundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let keepAlive = head.isKeepAlive
        let version = head.version
        let name = self.node.name
        let node = self.node
        response.whenComplete { result in
            let context = boundContext.value
            let response: TicketResponse
            switch result {
            case .success(let value):
                response = value
            case .failure(let error):
                response = .error(.internalServerError, code: -500, "\(error)")
            }
            var body = context.channel.allocator.buffer(capacity: response.body.utf8.count)
            body.writeString(response.body)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.readableBytes))
            headers.add(name: "X-Ticket-Node", value: name)
            if let seconds = response.retryAfter {
                headers.add(name: "Retry-After", value: String(seconds))
            }
            if !keepAlive {
                headers.add(name: "Connection", value: "close")
            }
            context.write(boundSelf.value.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))), promise: nil)
            context.write(boundSelf.value.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            boundSelf.value.state = .idle
            if keepAlive {
                context.writeAndFlush(boundSelf.value.wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                // Only a closing response needs to know when its bytes are out.
                let ended = context.eventLoop.makePromise(of: Void.self)
                context.writeAndFlush(boundSelf.value.wrapOutboundOut(.end(nil)), promise: ended)
                ended.futureResult.whenComplete { _ in boundContext.value.close(promise: nil) }
            }
            if let statLog = node.statLog {
                let elapsed = NIODeadline.now() - boundSelf.value.received
                statLog.record(StatLog.Entry(
                    time: StatLog.now(),
                    route: TicketNodeContext.routeName(of: head),
                    account: head.headers.first(name: "X-Account-Id"),
                    status: Int(response.status.code),
                    code: response.code,
                    localSales: node.stock.snapshot.taken,
                    micros: elapsed.nanoseconds / 1_000
                ))
            }
        }
    }
}

@available(*, unavailable)
extension TicketHTTPHandler: Sendable {}

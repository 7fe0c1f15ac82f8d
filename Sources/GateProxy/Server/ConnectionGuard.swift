import GateCore
import GateRedis
import NIOCore
import NIOHTTP1

/// Watches a client connection's raw bytes and closes it when it idles too long, sends its
/// head too slowly (408) or trickles its body (408): the edge of `ConnectionDeadlines`.
///
/// It sits right after TLS (or the socket) and before the proxy handler, so it sees every byte
/// the client sends; the proxy handler tells it where requests begin and end. One timer per
/// connection, re-armed only when it fires: arriving bytes change a number, nothing else.
final class ConnectionGuard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var deadlines: ConnectionDeadlines
    private var timer: Scheduled<Void>?
    private var armedFor: MonotonicInstant?
    private var context: ChannelHandlerContext?
    /// Set by the proxy handler once an answer has begun: a timeout then closes without a 408.
    var answerStarted = false
    private let onExpiry: @Sendable (ConnectionDeadlines.Expiry) -> Void

    /// `onExpiry` is told (for metrics and logs) before the connection is answered and closed.
    init(configuration: ConnectionDeadlines.Configuration, onExpiry: @escaping @Sendable (ConnectionDeadlines.Expiry) -> Void) {
        self.deadlines = ConnectionDeadlines(configuration: configuration, acceptedAt: .now())
        self.onExpiry = onExpiry
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.arm()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = self.unwrapInboundIn(data).readableBytes
        self.deadlines.bytesReceived(bytes, at: .now())
        self.arm()
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        context.fireChannelInactive()
    }

    /// A request head was decoded.
    func headReceived() {
        self.deadlines.headReceived(at: .now())
        self.arm()
    }

    /// The request is complete; the clock stops until the answer ends.
    func requestEnded() {
        self.deadlines.requestEnded()
    }

    /// The answer ended and the connection stays open.
    func responseEnded() {
        self.answerStarted = false
        self.deadlines.responseEnded(at: .now())
        self.arm()
    }

    /// Schedules the timer for the current deadline unless one already fires no later.
    private func arm() {
        guard let context, let deadline = self.deadlines.deadline else {
            return
        }
        if let armed = self.armedFor, armed <= deadline {
            return
        }
        self.timer?.cancel()
        self.armedFor = deadline
        let delay = deadline - .now()
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: max(delay, .zero).timeAmount) {
            self.fire()
        }
    }

    private func fire() {
        self.armedFor = nil
        self.timer = nil
        guard let context, let expiry = self.deadlines.expired(at: .now()) else {
            self.arm()
            return
        }
        self.onExpiry(expiry)
        self.context = nil
        switch expiry {
        case .idle:
            context.close(promise: nil)
        case .header, .slowBody:
            guard !self.answerStarted else {
                context.close(promise: nil)
                return
            }
            // Written as raw bytes: no request head may have been decoded yet.
            let reason = expiry == .header ? "request head not received in time" : "request body arrived too slowly"
            let answer = LocalAnswer(status: .requestTimeout, code: LocalAnswer.Code.timeout, reason: reason)
            context.writeAndFlush(self.wrapOutboundOut(answer.bytes(minor: 1, close: true, allocator: context.channel.allocator)))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension ConnectionGuard: Sendable {}

import GateRules
import NIOCore
import NIOHTTP1

/// What an upstream connection tells the exchange it serves (the client's proxy handler).
///
/// Both live on the same event loop: the calls are plain method calls, no hop.
protocol UpstreamExchange: AnyObject {
    func upstreamReceived(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    func upstreamClosed(error: (any Error)?)
}

/// One keep-alive connection to a backend: re-serialised requests go out through NIO's HTTP
/// encoder, the answer comes back through its decoder to the exchange it is lent to.
///
/// Reads are held back while the client cannot take more (`pauseReading`), so a slow client
/// pins at most the socket buffers and the outbound water mark, never an unbounded queue.
final class UpstreamConnection: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    let endpoint: Endpoint
    /// The exchange this connection is lent to; `nil` while it idles in the pool.
    var exchange: (any UpstreamExchange)?
    /// When it went back to the pool (an old idle connection may be closed by the backend).
    var idleSince: NIODeadline = .now()
    private var context: ChannelHandlerContext?
    private var reads = HeldReads()
    private var closeError: (any Error)?

    init(endpoint: Endpoint) {
        self.endpoint = endpoint
    }

    var isActive: Bool {
        self.context?.channel.isActive ?? false
    }

    var isWritable: Bool {
        self.context?.channel.isWritable ?? false
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let exchange = self.exchange else {
            // Bytes on an idle connection: the backend is out of step; never reuse it.
            context.close(promise: nil)
            return
        }
        exchange.upstreamReceived(self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.exchange?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.exchange?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let exchange = self.exchange
        self.exchange = nil
        exchange?.upstreamClosed(error: self.closeError)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.closeError = error
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if self.reads.allowsRead() {
            context.read()
        }
    }

    /// Stops reading the answer (the client's side is full).
    func pauseReading() {
        self.reads.pause()
    }

    /// Reads again (the client's side drained).
    func resumeReading() {
        if self.reads.resume(), let context = self.context {
            context.read()
        }
    }

    func write(_ part: HTTPClientRequestPart, promise: EventLoopPromise<Void>? = nil) {
        guard let context = self.context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(self.wrapOutboundOut(part), promise: promise)
    }

    func flush() {
        self.context?.flush()
    }

    func close() {
        self.exchange = nil
        self.context?.close(promise: nil)
    }
}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}

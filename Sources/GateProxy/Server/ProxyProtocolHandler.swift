import GateCore
import NIOCore

/// Reads the PROXY protocol header (v1 or v2) a trusted load balancer sends before the client's
/// bytes, announces the real client address, then leaves the pipeline.
///
/// Only installed for a connection from a trusted proxy on a `proxy_protocol` listener: a
/// header from anyone else is never believed (its bytes then reach the proxy handler's HTTP
/// parser and are refused as a malformed request). A partial header is waited for, up to the
/// parser's size bound; anything invalid closes the connection without an answer (the peer
/// speaks a different protocol, there is no client to answer). A `LOCAL` header (the
/// balancer's own health check) keeps the socket's address.
final class ProxyProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Fired down the pipeline once the header is read (its `source` is `nil` for LOCAL).
    struct HeaderReceived {
        let header: ProxyHeader
    }

    private var buffered: ByteBuffer?
    private let onHeader: (ProxyHeader) -> Bool

    /// `onHeader` sees the parsed header before any client byte moves on; returning `false`
    /// closes the connection (e.g. the named client is over its connection cap).
    init(onHeader: @escaping (ProxyHeader) -> Bool) {
        self.onHeader = onHeader
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        if var buffered = self.buffered {
            buffered.writeBuffer(&incoming)
            self.buffered = buffered
        } else {
            self.buffered = incoming
        }
        guard let bytes = self.buffered else {
            return
        }
        switch ProxyProtocolParser.parse(bytes.readableBytesView) {
        case .needMoreData:
            return
        case .invalid(let error):
            self.buffered = nil
            context.fireErrorCaught(error)
            context.close(promise: nil)
        case .parsed(let header, let consumed):
            var rest = bytes
            rest.moveReaderIndex(forwardBy: consumed)
            self.buffered = nil
            guard self.onHeader(header) else {
                context.close(promise: nil)
                return
            }
            context.fireUserInboundEventTriggered(HeaderReceived(header: header))
            if rest.readableBytes > 0 {
                context.fireChannelRead(self.wrapInboundOut(rest))
                context.fireChannelReadComplete()
            }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.buffered = nil
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension ProxyProtocolHandler: Sendable {}

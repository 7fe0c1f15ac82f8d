import GateCore
import GateRules
import NIOCore

/// What an upstream connection tells the exchange it serves (the client's proxy handler).
///
/// Both live on the same event loop: the calls are plain method calls, no hop.
protocol UpstreamExchange: AnyObject {
    /// The answer's head, read in place in `bytes` (1xx heads are not passed on).
    func upstreamHead(_ head: HTTP1ResponseHead, bytes: ByteBuffer)
    /// Body data of the answer (framing removed).
    func upstreamBody(_ data: ByteBuffer)
    /// The answer ended; `reusable` when the connection can serve another request.
    func upstreamEnd(reusable: Bool)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    /// The connection closed or failed before the answer ended.
    func upstreamClosed(error: (any Error)?)
}

/// A backend's answer the gateway could not read (a 502 for the client).
struct UpstreamProtocolError: Error, CustomStringConvertible {
    let description: String
}

/// One keep-alive connection to a backend. The request head and body go out as bytes the
/// exchange serialised; the answer is parsed here (`HTTP1Head`, `ChunkedDecoder`) and handed to
/// the exchange it is lent to as a head, body data and an end.
///
/// Reads are held back while the client cannot take more (`pauseReading`), so a slow client
/// pins at most the socket buffers and the outbound water mark, never an unbounded queue.
final class UpstreamConnection: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The largest answer head read (status line and fields).
    static let maximumHeadBytes = 64 * 1024

    private enum Reading {
        /// No exchange (idle in the pool): any byte is the backend being out of step.
        case idle
        case head(resumeAt: Int)
        case length(remaining: Int)
        case chunked(ChunkedDecoder)
        case untilClose
    }

    let endpoint: Endpoint
    /// The exchange this connection is lent to; `nil` while it idles in the pool.
    private(set) var exchange: (any UpstreamExchange)?
    /// When it went back to the pool (an old idle connection may be closed by the backend).
    var idleSince: NIODeadline = .now()
    private var context: ChannelHandlerContext?
    private var reads = HeldReads()
    private var closeError: (any Error)?
    private var reading = Reading.idle
    private var inbound: ByteBuffer?
    private var requestMethod = "GET"
    private var keepAlive = true
    private var parsing = false

    init(endpoint: Endpoint) {
        self.endpoint = endpoint
    }

    var isActive: Bool {
        self.context?.channel.isActive ?? false
    }

    var isWritable: Bool {
        self.context?.channel.isWritable ?? false
    }

    /// Lends the connection to `exchange` for one request with `method` (HEAD answers have no body).
    func begin(_ exchange: any UpstreamExchange, method: String) {
        self.exchange = exchange
        self.requestMethod = method
        self.reading = .head(resumeAt: 0)
        self.inbound = nil
    }

    /// The exchange no longer listens (the connection goes back to the pool or closes).
    func detach() {
        self.exchange = nil
        self.reading = .idle
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        guard self.exchange != nil else {
            // Bytes on an idle connection: the backend is out of step; never reuse it.
            context.close(promise: nil)
            return
        }
        if var pending = self.inbound {
            pending.writeBuffer(&bytes)
            self.inbound = pending
        } else {
            self.inbound = bytes
        }
        self.parseInbound()
    }

    /// Reads heads and bodies out of the bytes received until they run out.
    private func parseInbound() {
        guard !self.parsing else {
            return
        }
        self.parsing = true
        defer { self.parsing = false }
        while var buffer = self.inbound, buffer.readableBytes > 0, let exchange = self.exchange {
            switch self.reading {
            case .idle:
                self.inbound = nil
                self.fail("bytes after the end of an answer")
                return
            case .head(let resumeAt):
                let scan = buffer.withUnsafeReadableBytes { HTTP1Head.scan($0, resumeAt: resumeAt) }
                switch scan {
                case .incomplete(let next, _):
                    guard buffer.readableBytes <= Self.maximumHeadBytes else {
                        return self.fail("answer head larger than \(Self.maximumHeadBytes) bytes")
                    }
                    self.reading = .head(resumeAt: next)
                    return
                case .malformed(let reason):
                    return self.fail("malformed answer head: \(reason)")
                case .complete(let length):
                    let head = buffer.readSlice(length: length)!
                    self.inbound = buffer.readableBytes > 0 ? buffer : nil
                    self.reading = .head(resumeAt: 0)
                    guard self.received(head: head, exchange: exchange) else {
                        return
                    }
                }
            case .length(let remaining):
                let take = min(remaining, buffer.readableBytes)
                let data = buffer.readSlice(length: take)!
                self.inbound = buffer.readableBytes > 0 ? buffer : nil
                self.reading = take == remaining ? .idle : .length(remaining: remaining - take)
                exchange.upstreamBody(data)
                if take == remaining, self.exchange === exchange {
                    self.ended(exchange)
                }
            case .chunked(var decoder):
                let read = buffer.readChunked(with: &decoder)
                self.reading = .chunked(decoder)
                self.inbound = buffer.readableBytes > 0 ? buffer : nil
                switch read {
                case .needMore:
                    break
                case .data(let data):
                    exchange.upstreamBody(data)
                case .end:
                    self.reading = .idle
                    self.ended(exchange)
                case .malformed(let reason):
                    return self.fail("malformed chunked answer: \(reason)")
                }
            case .untilClose:
                self.inbound = nil
                exchange.upstreamBody(buffer)
            }
        }
    }

    /// A complete head: passes it on and sets up the body. `false` when reading must stop.
    private func received(head bytes: ByteBuffer, exchange: any UpstreamExchange) -> Bool {
        let method = self.requestMethod
        let parsed = bytes.withUnsafeReadableBytes { HTTP1ResponseHead.parse($0, requestMethod: method) }
        let head: HTTP1ResponseHead
        switch parsed {
        case .success(let response):
            head = response
        case .failure(let error):
            self.fail("malformed answer head: \(error)")
            return false
        }
        guard head.major == 1 else {
            self.fail("answer in HTTP/\(head.major).\(head.minor)")
            return false
        }
        if head.status < 200 {
            guard head.status != 101 else {
                self.fail("101 Switching Protocols to a request that asked for no upgrade")
                return false
            }
            // 1xx (100 Continue, 103 Early Hints): informational only, not forwarded.
            return true
        }
        let framing = head.framing
        self.keepAlive = head.keepAlive
        switch framing {
        case .none, .contentLength(0):
            self.reading = .idle
        case .contentLength(let length):
            self.reading = .length(remaining: length)
        case .chunked:
            self.reading = .chunked(ChunkedDecoder())
        case .untilClose:
            self.reading = .untilClose
        }
        exchange.upstreamHead(head, bytes: bytes)
        if case .idle = self.reading, self.exchange === exchange {
            self.ended(exchange)
        }
        return true
    }

    private func ended(_ exchange: any UpstreamExchange) {
        // Bytes beyond the answer mean the backend and the gateway disagree on framing.
        let reusable = self.keepAlive && (self.inbound?.readableBytes ?? 0) == 0
        self.inbound = nil
        self.reading = .idle
        exchange.upstreamEnd(reusable: reusable)
    }

    private func fail(_ reason: String) {
        self.inbound = nil
        self.closeError = UpstreamProtocolError(description: reason)
        self.context?.close(promise: nil)
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
        if case .untilClose = self.reading, self.closeError == nil, let exchange {
            // The answer was delimited by the close: it is complete.
            self.reading = .idle
            exchange.upstreamEnd(reusable: false)
        } else {
            self.reading = .idle
            exchange?.upstreamClosed(error: self.closeError)
        }
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

    func write(_ bytes: ByteBuffer) {
        self.context?.write(self.wrapOutboundOut(bytes), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    func close() {
        self.detach()
        self.context?.close(promise: nil)
    }
}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}

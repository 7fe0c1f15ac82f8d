import GateCore
import NIOCore

/// What the next bytes of a chunked body were.
enum ChunkedRead {
    /// Only framing: every byte was consumed.
    case needMore
    /// Chunk data (the buffer moved past it).
    case data(ByteBuffer)
    /// The body ended (the buffer moved past its last chunk and trailers).
    case end
    case malformed(String)
}

extension ByteBuffer {
    /// Reads the next piece of a chunked body with `decoder`, for both sides of the proxy.
    mutating func readChunked(with decoder: inout ChunkedDecoder) -> ChunkedRead {
        switch self.withUnsafeReadableBytes({ decoder.next($0) }) {
        case .needMore:
            self.moveReaderIndex(to: self.writerIndex)
            return .needMore
        case .data(let range):
            self.moveReaderIndex(forwardBy: range.lowerBound)
            return .data(self.readSlice(length: range.count)!)
        case .end(let consumed):
            self.moveReaderIndex(forwardBy: consumed)
            return .end
        case .malformed(let reason):
            return .malformed(reason)
        }
    }
}

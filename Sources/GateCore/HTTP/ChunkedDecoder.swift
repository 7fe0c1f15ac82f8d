/// Reads a chunked body (RFC 9112 §7.1) incrementally: the data of each chunk comes out, the
/// framing stays behind, so whoever forwards the body frames it again itself.
///
/// Strict: hex sizes of at most 15 digits, optional whitespace only before an extension,
/// extensions and trailer fields free of control characters (HTAB excepted), every line ending
/// in CRLF. Extensions and trailer fields are read and dropped; their bytes are bounded.
public struct ChunkedDecoder: Sendable {
    /// What the next bytes held.
    public enum Step: Sendable, Equatable {
        /// Every byte was framing and is consumed; more are needed.
        case needMore
        /// Chunk data at `range` of the bytes given; everything before `range.upperBound` is consumed.
        case data(Range<Int>)
        /// The body ended after `consumed` bytes (the last chunk and the trailer section).
        case end(consumed: Int)
        /// The framing is broken.
        case malformed(String)
    }

    private enum State: Sendable {
        case size(value: Int, digits: Int)
        /// After the size: whitespace, then an extension or CRLF.
        case afterSize(value: Int, inExtension: Bool)
        case sizeLF(value: Int)
        case data(remaining: Int)
        case dataCR
        case dataLF
        /// At the start of a trailer line (or the final empty line).
        case trailerLineStart
        case trailerLine
        case trailerLF(empty: Bool)
        case done
    }

    private var state: State = .size(value: 0, digits: 0)
    /// Bytes of extensions and trailers seen, bounded by `maximumMetadataBytes`.
    private var metadataBytes = 0
    public let maximumMetadataBytes: Int

    public init(maximumMetadataBytes: Int = 16 * 1024) {
        self.maximumMetadataBytes = maximumMetadataBytes
    }

    /// Whether the last chunk and the trailer section were read.
    public var isDone: Bool {
        if case .done = self.state {
            return true
        }
        return false
    }

    /// Advances over `bytes` until chunk data, the end, a malformation, or the bytes run out.
    public mutating func next(_ bytes: UnsafeRawBufferPointer) -> Step {
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            switch self.state {
            case .size(let value, let digits):
                if let nibble = Self.hexValue(byte) {
                    guard digits < 15 else {
                        return .malformed("chunk size has more than 15 hex digits")
                    }
                    self.state = .size(value: value << 4 | nibble, digits: digits + 1)
                } else {
                    guard digits > 0 else {
                        return .malformed("chunk size is not a hex number")
                    }
                    self.state = .afterSize(value: value, inExtension: false)
                    continue
                }
            case .afterSize(let value, let inExtension):
                if byte == UInt8(ascii: "\r") {
                    self.state = .sizeLF(value: value)
                } else if inExtension {
                    guard byte == UInt8(ascii: "\t") || (byte >= 0x20 && byte != 0x7F) else {
                        return .malformed("control character in a chunk extension")
                    }
                    guard self.countMetadata() else {
                        return .malformed("chunk extensions larger than \(self.maximumMetadataBytes) bytes")
                    }
                } else if byte == UInt8(ascii: "\n") {
                    return .malformed("chunk size line does not end in CRLF (bare LF)")
                } else if byte == UInt8(ascii: ";") {
                    self.state = .afterSize(value: value, inExtension: true)
                } else if byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") {
                    return .malformed("chunk size is not a hex number")
                }
            case .sizeLF(let value):
                guard byte == UInt8(ascii: "\n") else {
                    return .malformed("chunk size line does not end in CRLF")
                }
                self.state = value == 0 ? .trailerLineStart : .data(remaining: value)
            case .data(let remaining):
                let take = min(remaining, count - index)
                self.state = take == remaining ? .dataCR : .data(remaining: remaining - take)
                return .data(index..<(index + take))
            case .dataCR:
                guard byte == UInt8(ascii: "\r") else {
                    return .malformed("chunk data longer than its size")
                }
                self.state = .dataLF
            case .dataLF:
                guard byte == UInt8(ascii: "\n") else {
                    return .malformed("chunk data not followed by CRLF")
                }
                self.state = .size(value: 0, digits: 0)
            case .trailerLineStart:
                if byte == UInt8(ascii: "\r") {
                    self.state = .trailerLF(empty: true)
                } else {
                    self.state = .trailerLine
                    continue
                }
            case .trailerLine:
                if byte == UInt8(ascii: "\r") {
                    self.state = .trailerLF(empty: false)
                } else {
                    guard byte == UInt8(ascii: "\t") || (byte >= 0x20 && byte != 0x7F) else {
                        return .malformed("control character in a trailer field")
                    }
                    guard self.countMetadata() else {
                        return .malformed("trailer section larger than \(self.maximumMetadataBytes) bytes")
                    }
                }
            case .trailerLF(let empty):
                guard byte == UInt8(ascii: "\n") else {
                    return .malformed("trailer line does not end in CRLF")
                }
                if empty {
                    self.state = .done
                    return .end(consumed: index + 1)
                }
                self.state = .trailerLineStart
            case .done:
                return .end(consumed: index)
            }
            index += 1
        }
        if case .done = self.state {
            return .end(consumed: count)
        }
        return .needMore
    }

    private mutating func countMetadata() -> Bool {
        self.metadataBytes += 1
        return self.metadataBytes <= self.maximumMetadataBytes
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"):
            return Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"):
            return Int(byte - UInt8(ascii: "A") + 10)
        default:
            return nil
        }
    }
}

/// A backend's response head read in place: positions into the head's bytes instead of
/// strings, and every decision the proxy needs already taken — the body's framing, whether the
/// connection can be reused, and which fields go on to the client.
///
/// Fields that do not go on: the hop-by-hop ones (RFC 9110 §7.6.1: `Connection`, `Keep-Alive`,
/// `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-Authorization`,
/// `Proxy-Authenticate`), every field a `Connection` header names, and `Content-Length` when the
/// body has one (the proxy writes the framing itself). A body-less answer (to HEAD, 204, 304)
/// keeps its `Content-Length`: it describes the representation, not this message.
public struct HTTP1ResponseHead: Sendable {
    /// Where a field's name and value are in the head's bytes.
    public struct FieldSpan: Sendable, Hashable {
        public var name: Range<Int>
        public var value: Range<Int>
    }

    public var major: Int
    public var minor: Int
    public var status: Int
    /// The reason phrase's bytes (may be empty).
    public var reason: Range<Int>
    public var framing: ResponseFraming
    /// Whether the backend keeps the connection open after this answer (never for a body
    /// delimited by the close, nor after an answer with both a length and chunked framing).
    public var keepAlive: Bool
    /// The fields to send on to the client, in order.
    public var forwarded: [FieldSpan]

    /// Parses a whole head (as found by `HTTP1Head.scan`) answering a request with `method`.
    public static func parse(_ head: UnsafeRawBufferPointer, requestMethod method: String) -> Result<HTTP1ResponseHead, HTTP1HeadError> {
        let count = head.count
        guard let (major, minor) = HTTP1Head.version(head, at: 0), count >= 14, head[8] == UInt8(ascii: " "),
              let status = HTTP1Head.threeDigits(head, at: 9)
        else {
            return .failure(HTTP1HeadError("malformed status line"))
        }
        var cursor = 12
        var reasonStart = cursor
        if head[cursor] == UInt8(ascii: " ") {
            cursor += 1
            reasonStart = cursor
            while cursor < count, head[cursor] != UInt8(ascii: "\r") {
                let byte = head[cursor]
                guard byte == UInt8(ascii: "\t") || byte >= 0x20, byte != 0x7F else {
                    return .failure(HTTP1HeadError("control character in the status line's reason"))
                }
                cursor += 1
            }
        }
        guard cursor + 1 < count, head[cursor] == UInt8(ascii: "\r"), head[cursor + 1] == UInt8(ascii: "\n") else {
            return .failure(HTTP1HeadError("malformed status line"))
        }
        let reason = reasonStart..<cursor
        var spans: [FieldSpan] = []
        spans.reserveCapacity(12)
        if case .failure(let error) = HTTP1Head.scanFields(head, from: cursor + 2, { name, value in
            spans.append(FieldSpan(name: name, value: value))
        }) {
            return .failure(error)
        }
        // Framing, connection tokens.
        var length: Int?
        var lastCoding: Range<Int>?
        var hasTransferEncoding = false
        var close = false
        var keepAliveToken = false
        var named: [Range<Int>] = []
        for span in spans {
            switch Self.kind(of: head, span.name) {
            case .contentLength:
                var failed = false
                Self.forEachListItem(head, span.value) { item in
                    guard !failed else {
                        return
                    }
                    guard let value = Self.decimal(head, item), length == nil || length == value else {
                        failed = true
                        return
                    }
                    length = value
                }
                if failed {
                    return .failure(HTTP1HeadError("Content-Length is not one number of bytes"))
                }
            case .transferEncoding:
                hasTransferEncoding = true
                Self.forEachListItem(head, span.value) { lastCoding = $0 }
            case .connection:
                Self.forEachListItem(head, span.value) { token in
                    if Self.equals(head, token, "close") {
                        close = true
                    } else if Self.equals(head, token, "keep-alive") {
                        keepAliveToken = true
                    } else {
                        named.append(token)
                    }
                }
            case .hopByHop, .other:
                break
            }
        }
        let framing: ResponseFraming
        if method == "HEAD" || status < 200 || status == 204 || status == 304 {
            framing = .none
        } else if hasTransferEncoding {
            // Transfer-Encoding overrides Content-Length; chunked must be the final coding.
            framing = lastCoding.map { Self.equals(head, $0, "chunked") } == true ? .chunked : .untilClose
        } else if let length {
            framing = .contentLength(length)
        } else {
            framing = .untilClose
        }
        // Filtered in place: the array is the one the fields were collected in.
        spans.removeAll { span in
            switch Self.kind(of: head, span.name) {
            case .contentLength:
                return framing != .none
            case .transferEncoding, .connection, .hopByHop:
                return true
            case .other:
                return named.contains { Self.equalsIgnoringCase(head, $0, span.name) }
            }
        }
        // A message framed two ways (length and chunked) is read as chunked, but the connection
        // is not trusted with another exchange (RFC 9112 §6.1).
        let keepAlive = (minor >= 1 ? !close : keepAliveToken && !close) && framing != .untilClose
            && !(hasTransferEncoding && length != nil)
        return .success(HTTP1ResponseHead(
            major: major, minor: minor, status: status, reason: reason,
            framing: framing, keepAlive: keepAlive, forwarded: spans
        ))
    }

    private enum Kind {
        case contentLength, transferEncoding, connection, hopByHop, other
    }

    /// The role of a field name (compared by length first: most names differ in length).
    private static func kind(of bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> Kind {
        switch name.count {
        case 14 where Self.equals(bytes, name, "content-length"):
            return .contentLength
        case 17 where Self.equals(bytes, name, "transfer-encoding"):
            return .transferEncoding
        case 10 where Self.equals(bytes, name, "connection"):
            return .connection
        case 2 where Self.equals(bytes, name, "te"),
             7 where Self.equals(bytes, name, "trailer") || Self.equals(bytes, name, "upgrade"),
             10 where Self.equals(bytes, name, "keep-alive"),
             16 where Self.equals(bytes, name, "proxy-connection"),
             18 where Self.equals(bytes, name, "proxy-authenticate"),
             19 where Self.equals(bytes, name, "proxy-authorization"):
            return .hopByHop
        default:
            return .other
        }
    }

    /// Whether the bytes at `range` equal `lowercase` ignoring ASCII case.
    static func equals(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else {
            return false
        }
        let expected = lowercase.utf8Start
        for offset in 0..<range.count where bytes[range.lowerBound + offset] | 0x20 != expected[offset] {
            // `| 0x20` folds letters; for the '-' of the names compared here it is the identity.
            return false
        }
        return true
    }

    /// Whether two byte ranges are equal ignoring ASCII case.
    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
        guard a.count == b.count else {
            return false
        }
        for offset in 0..<a.count {
            let x = bytes[a.lowerBound + offset]
            let y = bytes[b.lowerBound + offset]
            if x != y && (x | 0x20 != y | 0x20 || !(x | 0x20 >= UInt8(ascii: "a") && x | 0x20 <= UInt8(ascii: "z"))) {
                return false
            }
        }
        return true
    }

    /// The comma-separated items of a list value, without optional whitespace, empty ones skipped.
    private static func forEachListItem(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        var start = range.lowerBound
        while start <= range.upperBound {
            var end = start
            while end < range.upperBound, bytes[end] != UInt8(ascii: ",") {
                end += 1
            }
            var low = start
            var high = end
            while low < high, bytes[low] == UInt8(ascii: " ") || bytes[low] == UInt8(ascii: "\t") {
                low += 1
            }
            while high > low, bytes[high - 1] == UInt8(ascii: " ") || bytes[high - 1] == UInt8(ascii: "\t") {
                high -= 1
            }
            if low < high {
                body(low..<high)
            }
            start = end + 1
        }
    }

    /// Plain decimal digits (at most 18) as a number.
    private static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else {
            return nil
        }
        var value = 0
        for index in range {
            let byte = bytes[index]
            guard byte >= 0x30 && byte <= 0x39 else {
                return nil
            }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }
}

/// How a response body is delimited (RFC 9112 §6.3).
public enum ResponseFraming: Sendable, Hashable {
    /// No body: an answer to HEAD, 1xx, 204, 304.
    case none
    /// Exactly this many bytes.
    case contentLength(Int)
    /// Chunked transfer coding.
    case chunked
    /// Until the sender closes the connection (the connection cannot be reused).
    case untilClose
}

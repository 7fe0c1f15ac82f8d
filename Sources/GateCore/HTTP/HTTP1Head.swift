/// HTTP/1 message heads read straight from bytes, strictly: the gateway's own parser, so the
/// bytes a backend sees are re-serialised from what was understood here, never copied through.
///
/// Strict where laxness lets two parties read one message two ways:
/// - every line ends in CRLF (a bare LF or a bare CR is refused);
/// - the request line is `method SP target SP HTTP/d.d`, single spaces, a visible-ASCII target;
/// - a field line is `name ":" OWS value OWS`: a token name with nothing between it and the
///   colon, a value without control characters (HTAB excepted);
/// - a line that starts with a space or a tab (obs-fold) is refused.
/// The framing rules on top (`Content-Length`, `Transfer-Encoding`, `Host`) are
/// `RequestHeadCheck`'s.
public enum HTTP1Head {
    public typealias Field = (name: String, value: String)

    /// A parsed request head.
    public struct Request: Sendable {
        public var method: String
        public var target: String
        public var major: Int
        public var minor: Int
        public var fields: [Field]

        public init(method: String, target: String, major: Int, minor: Int, fields: [Field]) {
            self.method = method
            self.target = target
            self.major = major
            self.minor = minor
            self.fields = fields
        }

        /// Whether the client wants the connection kept after this exchange: HTTP/1.1 unless
        /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
        public var isKeepAlive: Bool {
            HTTP1Head.isKeepAlive(minor: self.minor, fields: self.fields)
        }
    }

    /// Where a head ends in the bytes received so far.
    public enum Scan: Sendable, Equatable {
        /// No end yet; the lines before `resumeAt` are complete and checked: scan again from
        /// there when more bytes arrive. `inFirstLine` while the first line has not ended.
        case incomplete(resumeAt: Int, inFirstLine: Bool)
        /// The head is the first `length` bytes (its final empty line included).
        case complete(length: Int)
        /// A line did not end in CRLF.
        case malformed(String)
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")
    private static let colon = UInt8(ascii: ":")

    /// Looks for the empty line that ends a head, starting at `resumeAt` (the start of a line).
    public static func scan(_ bytes: UnsafeRawBufferPointer, resumeAt: Int = 0) -> Scan {
        var lineStart = resumeAt
        var index = resumeAt
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            if byte == Self.lf {
                guard index > lineStart, bytes[index - 1] == Self.cr else {
                    return .malformed("line ending is not CRLF (bare LF)")
                }
                if index - 1 == lineStart {
                    guard lineStart > 0 else {
                        return .malformed("empty first line")
                    }
                    return .complete(length: index + 1)
                }
                lineStart = index + 1
            } else if byte == Self.cr, index + 1 < count, bytes[index + 1] != Self.lf {
                return .malformed("CR not followed by LF (bare CR)")
            }
            index += 1
        }
        return .incomplete(resumeAt: lineStart, inFirstLine: lineStart == 0)
    }

    /// How many bytes of empty lines (CRLF) precede a request line: RFC 9112 §2.2 lets a
    /// server skip them (some clients send one after a body). `nil` while a lone CR ends the bytes.
    public static func leadingEmptyLines(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var index = 0
        while index < bytes.count, bytes[index] == Self.cr {
            guard index + 1 < bytes.count else {
                return nil
            }
            guard bytes[index + 1] == Self.lf else {
                return index
            }
            index += 2
        }
        return index
    }

    /// Parses a whole request head (as found by `scan`). Refusals are 400 with a reason.
    public static func parseRequest(_ head: UnsafeRawBufferPointer) -> Result<Request, RequestHeadCheck.Refusal> {
        var cursor = 0
        let count = head.count
        // method SP
        let methodStart = cursor
        while cursor < count, Self.isTokenByte(head[cursor]) {
            cursor += 1
        }
        guard cursor > methodStart, cursor < count, head[cursor] == Self.space else {
            return .failure(Self.badRequest("malformed request line: the method is not a token followed by one space"))
        }
        let method = Self.string(head, methodStart..<cursor)
        cursor += 1
        // request-target SP
        let targetStart = cursor
        while cursor < count, head[cursor] > 0x20, head[cursor] < 0x7F {
            cursor += 1
        }
        guard cursor > targetStart, cursor < count, head[cursor] == Self.space else {
            return .failure(Self.badRequest("malformed request line: the target is not visible ASCII followed by one space"))
        }
        let target = Self.string(head, targetStart..<cursor)
        cursor += 1
        // HTTP-version CRLF
        guard let (major, minor) = Self.version(head, at: cursor), cursor + 10 <= count,
              head[cursor + 8] == Self.cr, head[cursor + 9] == Self.lf
        else {
            return .failure(Self.badRequest("malformed request line: no HTTP/d.d version followed by CRLF"))
        }
        cursor += 10
        switch Self.parseFields(head, from: cursor) {
        case .success(let fields):
            return .success(Request(method: method, target: target, major: major, minor: minor, fields: fields))
        case .failure(let error):
            return .failure(Self.badRequest(error.description))
        }
    }

    /// The field lines from `start` to the final empty line, as strings.
    private static func parseFields(_ head: UnsafeRawBufferPointer, from start: Int) -> Result<[Field], HTTP1HeadError> {
        var fields: [Field] = []
        let scanned = Self.scanFields(head, from: start) { name, value in
            fields.append((name: Self.string(head, name), value: Self.string(head, value)))
        }
        return scanned.map { fields }
    }

    /// Checks the field lines from `start` to the final empty line and hands each field's name
    /// and value (without optional whitespace) to `field`, in order.
    static func scanFields(
        _ head: UnsafeRawBufferPointer,
        from start: Int,
        _ field: (_ name: Range<Int>, _ value: Range<Int>) -> Void
    ) -> Result<Void, HTTP1HeadError> {
        var cursor = start
        let count = head.count
        while cursor < count, head[cursor] != Self.cr {
            if head[cursor] == Self.space || head[cursor] == Self.tab {
                return .failure(HTTP1HeadError("a line starts with whitespace (obs-fold continuation)"))
            }
            let nameStart = cursor
            while cursor < count, Self.isTokenByte(head[cursor]) {
                cursor += 1
            }
            guard cursor < count, head[cursor] == Self.colon else {
                if cursor < count, head[cursor] == Self.space || head[cursor] == Self.tab {
                    return .failure(HTTP1HeadError("whitespace between the header name \(Self.quoted(head, nameStart..<cursor)) and its colon"))
                }
                return .failure(HTTP1HeadError("header name \(Self.quoted(head, nameStart..<min(cursor + 1, count))) is not a valid token"))
            }
            guard cursor > nameStart else {
                return .failure(HTTP1HeadError("a header line with an empty name"))
            }
            let nameEnd = cursor
            cursor += 1
            while cursor < count, head[cursor] == Self.space || head[cursor] == Self.tab {
                cursor += 1
            }
            let valueStart = cursor
            var valueEnd = cursor
            while cursor < count, head[cursor] != Self.cr {
                let byte = head[cursor]
                if byte == Self.space || byte == Self.tab {
                    // Trailing whitespace is not part of the value.
                } else if byte > 0x20 && byte != 0x7F {
                    valueEnd = cursor + 1
                } else {
                    return .failure(HTTP1HeadError("header \(Self.quoted(head, nameStart..<nameEnd)) has a control character (NUL, CR, LF or another) in its value"))
                }
                cursor += 1
            }
            field(nameStart..<nameEnd, valueStart..<valueEnd)
            // `scan` has checked that every CR is followed by LF.
            cursor += 2
        }
        return .success(())
    }

    /// `HTTP/d.d` at `index`.
    static func version(_ bytes: UnsafeRawBufferPointer, at index: Int) -> (Int, Int)? {
        guard index + 8 <= bytes.count,
              bytes[index] == UInt8(ascii: "H"), bytes[index + 1] == UInt8(ascii: "T"),
              bytes[index + 2] == UInt8(ascii: "T"), bytes[index + 3] == UInt8(ascii: "P"),
              bytes[index + 4] == UInt8(ascii: "/"), bytes[index + 6] == UInt8(ascii: "."),
              let major = Self.digit(bytes[index + 5]), let minor = Self.digit(bytes[index + 7])
        else {
            return nil
        }
        return (major, minor)
    }

    static func threeDigits(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int? {
        guard index + 3 <= bytes.count, let a = Self.digit(bytes[index]), let b = Self.digit(bytes[index + 1]), let c = Self.digit(bytes[index + 2]) else {
            return nil
        }
        return a * 100 + b * 10 + c
    }

    private static func digit(_ byte: UInt8) -> Int? {
        byte >= 0x30 && byte <= 0x39 ? Int(byte - 0x30) : nil
    }

    /// RFC 9110 `tchar`.
    public static func isTokenByte(_ byte: UInt8) -> Bool {
        Self.tokenTable[Int(byte)]
    }

    private static let tokenTable: [Bool] = (0...255).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(UInt8(byte))
        }
    }

    private static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// The bytes in quotes for an error message, control characters escaped, cut to 64.
    private static func quoted(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        var shown = ""
        for byte in bytes[range].prefix(64) {
            shown += byte < 0x20 || byte >= 0x7F ? "\\x\(String(byte, radix: 16))" : String(UnicodeScalar(byte))
        }
        return "'\(shown)'"
    }

    private static func badRequest(_ reason: String) -> RequestHeadCheck.Refusal {
        RequestHeadCheck.Refusal(status: 400, reason: reason)
    }

    /// HTTP/1.1 keeps a connection unless `Connection: close`; HTTP/1.0 only with `keep-alive`.
    static func isKeepAlive(minor: Int, fields: [Field]) -> Bool {
        var close = false
        var keepAlive = false
        for field in fields where field.name.equalsASCIICaseInsensitive("connection") {
            for token in field.value.utf8.split(separator: UInt8(ascii: ",")) {
                let name = Substring(token).trimmingSpaces()
                if name.equalsASCIICaseInsensitive("close") {
                    close = true
                } else if name.equalsASCIICaseInsensitive("keep-alive") {
                    keepAlive = true
                }
            }
        }
        return minor >= 1 ? !close : keepAlive && !close
    }
}

/// A response head the gateway could not read.
public struct HTTP1HeadError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

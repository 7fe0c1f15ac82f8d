/// The gateway's verdict on a request head before anything is forwarded: the body framing the
/// upstream will see, or a refusal with the status and the reason.
///
/// A proxy and its backend must agree on where a request ends, or a second request hides in the
/// first one's body (request smuggling). So every head whose framing could be read two ways is
/// refused here, before a byte reaches a backend:
/// - `Content-Length` together with `Transfer-Encoding`;
/// - more than one `Content-Length` (identical values included), an empty one, or one that is
///   not plain digits;
/// - any `Transfer-Encoding` but exactly `chunked` (`,chunked`, `chunked, chunked`, `gzip,
///   chunked`, several headers), and any `Transfer-Encoding` on HTTP/1.0;
/// - no `Host`, or more than one, on HTTP/1.1;
/// - a header name that is not a token, or a value with NUL, CR or LF.
/// Size limits answer 414 (URI), 431 (header count or bytes) and 413 (declared body).
public enum RequestHeadCheck {
    /// How the request body is delimited.
    public enum BodyFraming: Sendable, Hashable {
        /// No body.
        case none
        /// Exactly this many bytes.
        case contentLength(Int)
        /// Chunked transfer coding.
        case chunked
    }

    /// Limits on a request head.
    public struct Limits: Sendable, Hashable {
        /// Longest request target (URI), in bytes.
        public var maximumURIBytes: Int
        /// Most header fields.
        public var maximumHeaderCount: Int
        /// Most bytes of header names and values together.
        public var maximumHeaderBytes: Int
        /// Largest declared body (`Content-Length`); chunked bodies are counted as they stream.
        public var maximumBodyBytes: Int

        public init(
            maximumURIBytes: Int = 8 * 1024,
            maximumHeaderCount: Int = 100,
            maximumHeaderBytes: Int = 32 * 1024,
            maximumBodyBytes: Int = 1024 * 1024
        ) {
            self.maximumURIBytes = maximumURIBytes
            self.maximumHeaderCount = maximumHeaderCount
            self.maximumHeaderBytes = maximumHeaderBytes
            self.maximumBodyBytes = maximumBodyBytes
        }
    }

    /// Why a head was refused: the HTTP status to answer and a reason for the client and the log.
    public struct Refusal: Error, Sendable, Hashable, CustomStringConvertible {
        public let status: Int
        public let reason: String

        public init(status: Int, reason: String) {
            self.status = status
            self.reason = reason
        }

        public var description: String {
            "\(self.status) \(self.reason)"
        }

        static func badRequest(_ reason: String) -> Refusal {
            Refusal(status: 400, reason: reason)
        }
    }

    /// Checks a parsed head: `HTTP/major.minor`, the request target, and the header fields in
    /// the order received.
    public static func check(
        major: Int,
        minor: Int,
        uri: String,
        headers: [(name: String, value: String)],
        limits: Limits = Limits()
    ) -> Result<BodyFraming, Refusal> {
        guard major == 1, minor == 0 || minor == 1 else {
            return .failure(Refusal(status: 505, reason: "HTTP/\(major).\(minor) is not supported; use HTTP/1.1"))
        }
        guard uri.utf8.count <= limits.maximumURIBytes else {
            return .failure(Refusal(status: 414, reason: "request target longer than \(limits.maximumURIBytes) bytes"))
        }
        guard headers.count <= limits.maximumHeaderCount else {
            return .failure(Refusal(status: 431, reason: "more than \(limits.maximumHeaderCount) header fields"))
        }
        var headerBytes = 0
        var contentLengths: [String] = []
        var transferEncodings: [String] = []
        var hosts = 0
        for (name, value) in headers {
            headerBytes += name.utf8.count + value.utf8.count
            guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenByte) else {
                return .failure(.badRequest("header name \(Self.quoted(name)) is not a valid token"))
            }
            guard !value.utf8.contains(where: { $0 == 0 || $0 == 0x0D || $0 == 0x0A }) else {
                return .failure(.badRequest("header \(name) has a NUL, CR or LF in its value"))
            }
            if name.equalsASCIICaseInsensitive("content-length") {
                contentLengths.append(value)
            } else if name.equalsASCIICaseInsensitive("transfer-encoding") {
                transferEncodings.append(value)
            } else if name.equalsASCIICaseInsensitive("host") {
                hosts += 1
            }
        }
        guard headerBytes <= limits.maximumHeaderBytes else {
            return .failure(Refusal(status: 431, reason: "header fields larger than \(limits.maximumHeaderBytes) bytes"))
        }
        if minor == 1 {
            guard hosts == 1 else {
                return .failure(.badRequest(hosts == 0 ? "HTTP/1.1 request without a Host header" : "\(hosts) Host headers; send exactly one"))
            }
        } else if hosts > 1 {
            return .failure(.badRequest("\(hosts) Host headers; send at most one"))
        }
        if !transferEncodings.isEmpty {
            guard contentLengths.isEmpty else {
                return .failure(.badRequest("both Content-Length and Transfer-Encoding; send one"))
            }
            guard minor == 1 else {
                return .failure(.badRequest("Transfer-Encoding on an HTTP/1.0 request"))
            }
            guard transferEncodings.count == 1 else {
                return .failure(.badRequest("\(transferEncodings.count) Transfer-Encoding headers; send one: chunked"))
            }
            let coding = Self.trimmed(transferEncodings[0])
            guard coding.lowercased() == "chunked" else {
                if coding.contains(",") || coding.isEmpty {
                    return .failure(.badRequest("Transfer-Encoding \(Self.quoted(transferEncodings[0])) is malformed; only chunked is accepted"))
                }
                return .failure(Refusal(status: 501, reason: "Transfer-Encoding \(Self.quoted(coding)) is not supported; only chunked"))
            }
            return .success(.chunked)
        }
        switch contentLengths.count {
        case 0:
            return .success(.none)
        case 1:
            let text = Self.trimmed(contentLengths[0])
            guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let length = Int(text) else {
                return .failure(.badRequest("Content-Length \(Self.quoted(contentLengths[0])) is not a number of bytes"))
            }
            guard length <= limits.maximumBodyBytes else {
                return .failure(Refusal(status: 413, reason: "body of \(length) bytes is larger than \(limits.maximumBodyBytes)"))
            }
            return .success(length == 0 ? .none : .contentLength(length))
        default:
            return .failure(.badRequest("\(contentLengths.count) Content-Length headers; send exactly one"))
        }
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Without leading and trailing spaces and tabs (optional whitespace).
    private static func trimmed(_ text: String) -> String {
        String(Substring(text).trimmingSpaces())
    }

    /// `text` in quotes, control characters shown as escapes, cut to 64 characters.
    private static func quoted(_ text: String) -> String {
        var shown = ""
        for scalar in text.unicodeScalars.prefix(64) {
            shown += scalar.value < 0x20 || scalar.value == 0x7F ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
        }
        return "'\(shown)'"
    }
}

import GateCore
import NIOCore
import NIOHTTP1

/// An answer the gateway gives itself instead of forwarding: a status and a JSON body
/// `{"code":N,"reason":"…"}` that says why, as every SpikeGate refusal does.
struct LocalAnswer: Sendable {
    /// The `code` values of the gateway's own answers.
    enum Code {
        /// Shed: the upstream is at its limit, or the gateway is warming up (503).
        static let overloaded = -5
        /// The sale is over (the route's sold-out latch answers).
        static let soldOut = -12
        /// The request was malformed or broke a limit (4xx).
        static let badRequest = -1
        /// The account already has a request in flight (429).
        static let inFlight = -4
        /// No route matches the request (404).
        static let noRoute = -2
        /// The client was too slow (408).
        static let timeout = -6
        /// No upstream could answer (502, 503, 504).
        static let upstreamUnavailable = -7
        /// The shared state (Redis) could not be asked and the rule fails closed (503).
        static let stateUnavailable = -8
        /// The client address or account is banned (403).
        static let banned = -9
        /// Over a sliding window's limit (429).
        static let rateLimited = -10
        /// A challenge to solve (429), or a solution refused (403).
        static let challenge = -3
        /// The client's network is on a `deny:` list (403).
        static let denied = -11
    }

    let status: HTTPResponseStatus
    let code: Int
    let reason: String
    /// Extra header fields (e.g. `Retry-After`).
    let headers: [(String, String)]
    /// The body (JSON unless `contentType` says otherwise; built once where it can be:
    /// refusals are answered at attack rates).
    let body: String
    let contentType: String
    /// A binary body instead of `body` (an image, a backend's answer repeated).
    let binary: [UInt8]?
    /// The whole answer for an HTTP/1.1 client that keeps the connection, serialised once
    /// (answers given at attack rates: see `prebuilt()`).
    private var keepAliveBytes: ByteBuffer?

    private init(status: HTTPResponseStatus, code: Int, reason: String, headers: [(String, String)], body: String, contentType: String, binary: [UInt8]? = nil) {
        self.status = status
        self.code = code
        self.reason = reason
        self.headers = headers
        self.body = body
        self.contentType = contentType
        self.binary = binary
    }

    /// An answer whose JSON body carries more than the code and the reason: `members` is the
    /// rest of the object, already JSON (e.g. `"challenge":{…}`).
    init(status: HTTPResponseStatus, code: Int, reason: String, members: String, headers: [(String, String)] = []) {
        self.init(
            status: status, code: code, reason: reason, headers: headers,
            body: "{\"code\":\(code),\"reason\":\(jsonString(reason)),\(members)}", contentType: "application/json"
        )
    }

    /// An HTML page (for browsers).
    init(status: HTTPResponseStatus, code: Int, reason: String, html: String, headers: [(String, String)] = []) {
        self.init(status: status, code: code, reason: reason, headers: headers, body: html, contentType: "text/html; charset=utf-8")
    }

    /// A PNG image (code 0: not a refusal).
    init(status: HTTPResponseStatus, png: [UInt8], headers: [(String, String)] = []) {
        self.init(status: status, code: 0, reason: "image", headers: headers, body: "", contentType: "image/png", binary: png)
    }

    /// A backend's answer kept to be given again (the sold-out latch): its status, content
    /// type and body as they were.
    init(status: HTTPResponseStatus, contentType: String, body: [UInt8], headers: [(String, String)] = []) {
        self.init(status: status, code: 0, reason: "repeated", headers: headers, body: "", contentType: contentType, binary: body)
    }

    /// The same answer with its HTTP/1.1 keep-alive form serialised now, so giving it costs a
    /// buffer copy instead of a serialisation.
    func prebuilt() -> LocalAnswer {
        var answer = self
        answer.keepAliveBytes = self.bytes(minor: 1, close: false, allocator: ByteBufferAllocator())
        return answer
    }

    /// The plain refusal: `{"code":N,"reason":"…"}`.
    init(status: HTTPResponseStatus, code: Int, reason: String, headers: [(String, String)] = []) {
        self.init(
            status: status, code: code, reason: reason, headers: headers,
            body: "{\"code\":\(code),\"reason\":\(jsonString(reason))}", contentType: "application/json"
        )
    }

    /// The whole answer as bytes for an HTTP/1.`minor` client; `close` adds `Connection: close`
    /// (HTTP/1.0 clients kept alive get `Connection: keep-alive`).
    func bytes(minor: Int, close: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        if minor == 1, !close, let prebuilt = self.keepAliveBytes {
            return prebuilt
        }
        let body = self.body
        let length = self.binary?.count ?? body.utf8.count
        var buffer = allocator.buffer(capacity: 160 + length)
        buffer.writeString(minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeString(String(self.status.code))
        buffer.writeString(" ")
        buffer.writeString(self.status.reasonPhrase)
        buffer.writeString("\r\nContent-Type: ")
        buffer.writeString(self.contentType)
        buffer.writeString("\r\nContent-Length: ")
        buffer.writeString(String(length))
        buffer.writeString("\r\n")
        for (name, value) in self.headers {
            buffer.writeString(name)
            buffer.writeString(": ")
            buffer.writeString(value)
            buffer.writeString("\r\n")
        }
        if close {
            buffer.writeString("Connection: close\r\n")
        } else if minor == 0 {
            buffer.writeString("Connection: keep-alive\r\n")
        }
        buffer.writeString("\r\n")
        if let binary = self.binary {
            buffer.writeBytes(binary)
        } else {
            buffer.writeString(body)
        }
        return buffer
    }
}

import GateCore
import NIOCore
import NIOHTTP1

/// An answer the gateway gives itself instead of forwarding: a status and a JSON body
/// `{"code":N,"reason":"…"}` that says why, as every SpikeGate refusal does.
struct LocalAnswer: Sendable {
    /// The `code` values of the gateway's own answers (the anti-cheat and overload issues add
    /// -3 challenge, -4 in flight, -5 overloaded).
    enum Code {
        /// The request was malformed or broke a limit (4xx).
        static let badRequest = -1
        /// No route matches the request (404).
        static let noRoute = -2
        /// The client was too slow (408).
        static let timeout = -6
        /// No upstream could answer (502, 503, 504).
        static let upstreamUnavailable = -7
    }

    let status: HTTPResponseStatus
    let code: Int
    let reason: String
    /// Extra header fields (e.g. `Retry-After`).
    let headers: [(String, String)]
    /// The JSON body (built once: refusals are answered at attack rates).
    let body: String

    init(status: HTTPResponseStatus, code: Int, reason: String, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.reason = reason
        self.headers = headers
        self.body = "{\"code\":\(code),\"reason\":\(jsonString(reason))}"
    }

    /// The head for `version`; `close` adds `Connection: close`.
    func head(version: HTTPVersion, close: Bool) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(4 + self.headers.count)
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(self.body.utf8.count))
        for (name, value) in self.headers {
            headers.add(name: name, value: value)
        }
        if close {
            headers.add(name: "Connection", value: "close")
        } else if version.minor == 0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        return HTTPResponseHead(version: version.major == 1 && version.minor == 0 ? .http1_0 : .http1_1, status: self.status, headers: headers)
    }

    /// The whole answer as HTTP/1.1 bytes with `Connection: close`, for places below the HTTP
    /// encoder (a timeout before any head was decoded).
    func rawResponse(allocator: ByteBufferAllocator) -> ByteBuffer {
        let body = self.body
        var buffer = allocator.buffer(capacity: 160 + body.utf8.count)
        buffer.writeString("HTTP/1.1 \(self.status.code) \(self.status.reasonPhrase)\r\n")
        buffer.writeString("Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n")
        for (name, value) in self.headers {
            buffer.writeString("\(name): \(value)\r\n")
        }
        buffer.writeString("\r\n")
        buffer.writeString(body)
        return buffer
    }
}

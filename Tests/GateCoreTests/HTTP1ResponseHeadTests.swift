import GateCore
import Testing

@Suite("HTTP/1 response heads")
struct HTTP1ResponseHeadTests {
    private struct Parsed {
        let head: HTTP1ResponseHead
        let text: [UInt8]

        func string(_ range: Range<Int>) -> String {
            String(decoding: self.text[range], as: UTF8.self)
        }

        var forwardedNames: [String] {
            self.head.forwarded.map { self.string($0.name) }
        }
    }

    private func parse(_ text: String, method: String = "GET") -> Result<Parsed, HTTP1HeadError> {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { HTTP1ResponseHead.parse($0, requestMethod: method) }.map { Parsed(head: $0, text: bytes) }
    }

    @Test("status, reason and framing; hop-by-hop and Connection-named fields stay behind")
    func forwardsEndToEndFields() throws {
        let parsed = try self.parse(
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nConnection: keep-alive, X-Internal\r\n"
                + "X-Internal: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\nX-internal: 2\r\nTE: trailers\r\nSet-Cookie: a=b\r\n\r\n"
        ).get()
        #expect(parsed.head.status == 201)
        #expect(parsed.string(parsed.head.reason) == "Created")
        #expect(parsed.head.framing == .contentLength(2))
        #expect(parsed.head.keepAlive)
        #expect(parsed.forwardedNames == ["Content-Type", "Set-Cookie"])
    }

    @Test("framing: chunked beats a length, HEAD/204/304 have no body, no framing means until close")
    func framing() throws {
        let both = try self.parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n").get().head
        #expect(both.framing == .chunked)
        // Framed two ways: read as chunked, but the connection is not reused.
        #expect(!both.keepAlive)
        #expect(try self.parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").get().head.framing == .untilClose)
        let untilClose = try self.parse("HTTP/1.1 200 OK\r\n\r\n").get().head
        #expect(untilClose.framing == .untilClose)
        #expect(!untilClose.keepAlive)
        let head = try self.parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", method: "HEAD").get()
        #expect(head.head.framing == .none)
        // A body-less answer keeps the length of the representation it describes.
        #expect(head.forwardedNames == ["Content-Length"])
        #expect(try self.parse("HTTP/1.1 304 Not Modified\r\n\r\n").get().head.framing == .none)
        #expect(try self.parse("HTTP/1.1 204 No Content\r\n\r\n").get().head.framing == .none)
        #expect(try self.parse("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n").get().head.framing == .contentLength(7))
    }

    @Test("keep-alive: HTTP/1.0 only when asked, Connection: close ends it")
    func keepAlive() throws {
        #expect(try !self.parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").get().head.keepAlive)
        #expect(try self.parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").get().head.keepAlive)
        #expect(try !self.parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").get().head.keepAlive)
    }

    @Test("an empty reason is allowed, with or without its space")
    func emptyReason() throws {
        #expect(try self.parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").get().head.reason.isEmpty)
        #expect(try self.parse("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n").get().head.reason.isEmpty)
    }

    @Test(arguments: [
        ("HTTP/1.1 20 OK\r\n\r\n", "malformed status line"),
        ("HTTX/1.1 200 OK\r\n\r\n", "malformed status line"),
        ("HTTP/1.1 200 O\u{1}K\r\n\r\n", "control character"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "Content-Length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", "Content-Length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
        ("HTTP/1.1 200 OK\r\n folded\r\n\r\n", "obs-fold"),
    ])
    func refuses(_ text: String, _ reason: String) {
        switch self.parse(text) {
        case .success:
            Issue.record("accepted: \(text.debugDescription)")
        case .failure(let error):
            #expect(error.description.contains(reason), "\(error)")
        }
    }
}

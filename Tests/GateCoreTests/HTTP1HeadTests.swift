import GateCore
import Testing

/// The gateway's own HTTP/1 reader: heads found, parsed and refused byte by byte.
@Suite("HTTP/1 heads")
struct HTTP1HeadTests {
    private func scan(_ text: String, resumeAt: Int = 0) -> HTTP1Head.Scan {
        Array(text.utf8).withUnsafeBytes { HTTP1Head.scan($0, resumeAt: resumeAt) }
    }

    private func parse(_ text: String) -> Result<HTTP1Head.Request, RequestHeadCheck.Refusal> {
        Array(text.utf8).withUnsafeBytes { HTTP1Head.parseRequest($0) }
    }

    @Test("a head is found at its empty line, and a partial one resumes at its last whole line")
    func scanFindsTheEnd() {
        let head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        #expect(self.scan(head + "body") == .complete(length: head.utf8.count))
        #expect(self.scan("GET / HTT") == .incomplete(resumeAt: 0, inFirstLine: true))
        #expect(self.scan("GET / HTTP/1.1\r\nHost: a\r\nX-") == .incomplete(resumeAt: 25, inFirstLine: false))
        // Resuming from a line start gives the same answer as a scan from the beginning.
        #expect(self.scan(head, resumeAt: 16) == .complete(length: head.utf8.count))
    }

    @Test("bare LF and bare CR are refused wherever they are")
    func scanRefusesBareLineEnds() {
        for text in ["GET / HTTP/1.1\nHost: a\n\n", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"] {
            guard case .malformed = self.scan(text) else {
                Issue.record("not refused: \(text.debugDescription)")
                continue
            }
        }
    }

    @Test("empty lines before a request line are skipped; a lone CR waits for more")
    func leadingEmptyLines() {
        let skip = { (text: String) in Array(text.utf8).withUnsafeBytes { HTTP1Head.leadingEmptyLines($0) } }
        #expect(skip("\r\n\r\nGET") == 4)
        #expect(skip("GET") == 0)
        #expect(skip("\r\n\r") == nil)
        #expect(skip("\rX") == 0)
    }

    @Test("a request head parses into method, target, version and fields without optional whitespace")
    func parsesARequest() throws {
        let request = try self.parse("POST /buy?x=1 HTTP/1.1\r\nHost: tickets\r\nX-Empty:\r\nX-Pad: \t v a \t\r\n\r\n").get()
        #expect(request.method == "POST")
        #expect(request.target == "/buy?x=1")
        #expect(request.major == 1 && request.minor == 1)
        #expect(request.fields.map(\.name) == ["Host", "X-Empty", "X-Pad"])
        #expect(request.fields.map(\.value) == ["tickets", "", "v a"])
        #expect(request.isKeepAlive)
    }

    @Test("keep-alive follows the version and the Connection tokens")
    func keepAlive() throws {
        #expect(try !self.parse("GET / HTTP/1.1\r\nConnection: Keep-Alive, CLOSE\r\n\r\n").get().isKeepAlive)
        #expect(try !self.parse("GET / HTTP/1.0\r\n\r\n").get().isKeepAlive)
        #expect(try self.parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").get().isKeepAlive)
    }

    struct Bad: Sendable, CustomStringConvertible {
        let head: String
        let reason: String
        var description: String { self.reason }
    }

    static let bad: [Bad] = [
        Bad(head: "GET  / HTTP/1.1\r\n\r\n", reason: "the target is not visible ASCII"),
        Bad(head: "GET / HTTP/1.1 \r\n\r\n", reason: "no HTTP/d.d version"),
        Bad(head: "G(T / HTTP/1.1\r\n\r\n", reason: "the method is not a token"),
        Bad(head: "GET /a\u{7f} HTTP/1.1\r\n\r\n", reason: "the target is not visible ASCII"),
        Bad(head: "GET / HTTQ/1.1\r\n\r\n", reason: "no HTTP/d.d version"),
        Bad(head: "GET / HTTP/1.1\r\nHost: a\r\n  folded\r\n\r\n", reason: "obs-fold"),
        Bad(head: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", reason: "whitespace between the header name 'Host' and its colon"),
        Bad(head: "GET / HTTP/1.1\r\nX\u{1}Y: a\r\n\r\n", reason: "is not a valid token"),
        Bad(head: "GET / HTTP/1.1\r\n: a\r\n\r\n", reason: "empty name"),
        Bad(head: "GET / HTTP/1.1\r\nX: a\u{0}b\r\n\r\n", reason: "header 'X' has a control character"),
        Bad(head: "GET / HTTP/1.1\r\nX: a\u{7f}\r\n\r\n", reason: "header 'X' has a control character"),
    ]

    @Test(arguments: Self.bad)
    func refusesWithAReason(_ example: Bad) {
        switch self.parse(example.head) {
        case .success:
            Issue.record("accepted: \(example.head.debugDescription)")
        case .failure(let refusal):
            #expect(refusal.status == 400)
            #expect(refusal.reason.contains(example.reason), "\(refusal.reason)")
        }
    }

    @Test("obs-text in a value is kept, not refused")
    func obsText() throws {
        let bytes: [UInt8] = Array("GET / HTTP/1.1\r\nX: caf".utf8) + [0xC3, 0xA9] + Array("\r\n\r\n".utf8)
        let request = try bytes.withUnsafeBytes { HTTP1Head.parseRequest($0) }.get()
        #expect(request.fields[0].value == "café")
    }
}

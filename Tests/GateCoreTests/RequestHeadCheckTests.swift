import GateCore
import Testing

@Suite("Request head check")
struct RequestHeadCheckTests {
    private static func check(
        _ headers: [(String, String)],
        minor: Int = 1,
        uri: String = "/buy/ticket",
        limits: RequestHeadCheck.Limits = .init()
    ) -> Result<RequestHeadCheck.BodyFraming, RequestHeadCheck.Refusal> {
        RequestHeadCheck.check(major: 1, minor: minor, uri: uri, headers: headers.map { (name: $0.0, value: $0.1) }, limits: limits)
    }

    private static let wellFramed: [([(String, String)], RequestHeadCheck.BodyFraming)] = [
        ([("Host", "a")], .none),
        ([("Host", "a"), ("Content-Length", "0")], .none),
        ([("Host", "a"), ("Content-Length", "42")], .contentLength(42)),
        ([("Host", "a"), ("content-length", " 7 ")], .contentLength(7)),
        ([("Host", "a"), ("Transfer-Encoding", "chunked")], .chunked),
        ([("host", "a"), ("Transfer-Encoding", "Chunked")], .chunked),
    ]

    @Test("well-framed heads pass with the framing the upstream will see", arguments: Self.wellFramed)
    func accepted(headers: [(String, String)], framing: RequestHeadCheck.BodyFraming) {
        #expect(Self.check(headers) == .success(framing))
    }

    private static let smuggling: [([(String, String)], String)] = [
        ([("Host", "a"), ("Content-Length", "5"), ("Transfer-Encoding", "chunked")], "both Content-Length and Transfer-Encoding"),
        ([("Host", "a"), ("Transfer-Encoding", "chunked"), ("Content-Length", "5")], "both Content-Length and Transfer-Encoding"),
        ([("Host", "a"), ("Content-Length", "5"), ("Content-Length", "5")], "2 Content-Length headers"),
        ([("Host", "a"), ("Content-Length", "5"), ("Content-Length", "6")], "2 Content-Length headers"),
        ([("Host", "a"), ("Content-Length", "")], "is not a number of bytes"),
        ([("Host", "a"), ("Content-Length", "5, 5")], "is not a number of bytes"),
        ([("Host", "a"), ("Content-Length", "+5")], "is not a number of bytes"),
        ([("Host", "a"), ("Content-Length", "-1")], "is not a number of bytes"),
        ([("Host", "a"), ("Content-Length", "0x10")], "is not a number of bytes"),
        ([("Host", "a"), ("Content-Length", "99999999999999999999")], "is not a number of bytes"),
        ([("Host", "a"), ("Transfer-Encoding", ",chunked")], "is malformed"),
        ([("Host", "a"), ("Transfer-Encoding", "chunked, chunked")], "is malformed"),
        ([("Host", "a"), ("Transfer-Encoding", "")], "is malformed"),
        ([("Host", "a"), ("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")], "2 Transfer-Encoding headers"),
        ([("Content-Length", "1")], "without a Host header"),
        ([("Host", "a"), ("Host", "b")], "2 Host headers"),
        ([("Host", "a"), ("X-Evil", "a\u{0}b")], "NUL, CR or LF"),
        ([("Host", "a"), ("X-Evil", "a\rb")], "NUL, CR or LF"),
        ([("Host", "a"), ("Bad Name", "x")], "is not a valid token"),
        ([("Host", "a"), ("", "x")], "is not a valid token"),
        ([("Host", "a"), ("X:Y", "x")], "is not a valid token"),
    ]

    @Test("smuggling and malformed heads are refused with 400 and a reason", arguments: Self.smuggling)
    func refused(headers: [(String, String)], reason: String) {
        guard case .failure(let refusal) = Self.check(headers) else {
            Issue.record("accepted: \(headers)")
            return
        }
        #expect(refusal.status == 400)
        #expect(refusal.reason.contains(reason), "\(refusal.reason)")
    }

    @Test("HTTP/1.0: Host optional, Transfer-Encoding refused; other versions 505")
    func versions() {
        #expect(Self.check([], minor: 0) == .success(.none))
        #expect(Self.check([("Content-Length", "3")], minor: 0) == .success(.contentLength(3)))
        guard case .failure(let refusal) = Self.check([("Transfer-Encoding", "chunked")], minor: 0) else {
            Issue.record("TE on HTTP/1.0 accepted")
            return
        }
        #expect(refusal.status == 400)
        let two = RequestHeadCheck.check(major: 2, minor: 0, uri: "/", headers: [])
        #expect((try? two.get()) == nil)
        if case .failure(let refusal) = two {
            #expect(refusal.status == 505)
        }
    }

    @Test("limits: 414 for the URI, 431 for header count and bytes, 413 for a declared body, 501 for other codings")
    func limits() {
        let limits = RequestHeadCheck.Limits(maximumURIBytes: 10, maximumHeaderCount: 3, maximumHeaderBytes: 40, maximumBodyBytes: 100)
        func status(_ result: Result<RequestHeadCheck.BodyFraming, RequestHeadCheck.Refusal>) -> Int? {
            if case .failure(let refusal) = result {
                return refusal.status
            }
            return nil
        }
        #expect(status(Self.check([("Host", "a")], uri: "/0123456789", limits: limits)) == 414)
        #expect(status(Self.check([("Host", "a")], uri: "/012345678", limits: limits)) == nil)
        #expect(status(Self.check([("Host", "a"), ("A", "1"), ("B", "2"), ("C", "3")], uri: "/", limits: limits)) == 431)
        #expect(status(Self.check([("Host", "a"), ("A", String(repeating: "x", count: 40))], uri: "/", limits: limits)) == 431)
        #expect(status(Self.check([("Host", "a"), ("Content-Length", "101")], uri: "/", limits: limits)) == 413)
        #expect(status(Self.check([("Host", "a"), ("Content-Length", "100")], uri: "/", limits: limits)) == nil)
        #expect(status(Self.check([("Host", "a"), ("Transfer-Encoding", "gzip")], uri: "/", limits: limits)) == 501)
    }
}

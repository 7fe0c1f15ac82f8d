import GateCore
import Testing

@Suite("Chunked decoder")
struct ChunkedDecoderTests {
    /// Feeds `pieces` one after another, as reads would deliver them; returns the data and how
    /// the body ended.
    private func decode(_ pieces: [String], maximumMetadataBytes: Int = 1024) -> (data: String, end: ChunkedDecoder.Step?, leftover: String) {
        var decoder = ChunkedDecoder(maximumMetadataBytes: maximumMetadataBytes)
        var data: [UInt8] = []
        for (index, piece) in pieces.enumerated() {
            var bytes = Array(piece.utf8)
            while !bytes.isEmpty {
                let step = bytes.withUnsafeBytes { decoder.next($0) }
                switch step {
                case .needMore:
                    bytes = []
                case .data(let range):
                    data += bytes[range]
                    bytes.removeFirst(range.upperBound)
                case .end(let consumed):
                    bytes.removeFirst(consumed)
                    let rest = String(decoding: bytes, as: UTF8.self) + pieces.dropFirst(index + 1).joined()
                    return (String(decoding: data, as: UTF8.self), step, rest)
                case .malformed:
                    return (String(decoding: data, as: UTF8.self), step, "")
                }
            }
        }
        return (String(decoding: data, as: UTF8.self), nil, "")
    }

    @Test("chunks, extensions and trailers: the data comes out, the framing stays behind")
    func wholeBody() {
        let result = self.decode(["5;name=value\r\nhello\r\nA \r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT"])
        #expect(result.data == "hello0123456789")
        guard case .end? = result.end else {
            Issue.record("no end")
            return
        }
        // The bytes after the body are left for the next request.
        #expect(result.leftover == "NEXT")
    }

    @Test("split at every byte, the body decodes the same")
    func byteByByte() {
        let body = "3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
        let result = self.decode(body.map { String($0) })
        #expect(result.data == "abc0123456789abcdef")
        guard case .end = result.end else {
            Issue.record("no end")
            return
        }
    }

    @Test(arguments: [
        ("zz\r\nhello\r\n0\r\n\r\n", "not a hex number"),
        ("-5\r\nhello\r\n0\r\n\r\n", "not a hex number"),
        ("fffffffffffffffff1\r\nx\r\n0\r\n\r\n", "more than 15 hex digits"),
        ("5\nhello\r\n0\r\n\r\n", "does not end in CRLF"),
        ("5\r\nhelloX\r\n0\r\n\r\n", "longer than its size"),
        ("5\r\nhello\rX0\r\n\r\n", "not followed by CRLF"),
        ("5;a\u{1}\r\nhello\r\n0\r\n\r\n", "control character in a chunk extension"),
        ("0\r\nX: \u{0}\r\n\r\n", "control character in a trailer field"),
        ("5 x\r\nhello\r\n0\r\n\r\n", "not a hex number"),
    ])
    func refuses(_ body: String, _ reason: String) {
        guard case .malformed(let message)? = self.decode([body]).end else {
            Issue.record("accepted: \(body.debugDescription)")
            return
        }
        #expect(message.contains(reason), "\(message)")
    }

    @Test("extensions and trailers are bounded")
    func metadataIsBounded() {
        let long = "1;" + String(repeating: "e", count: 100) + "\r\nx\r\n0\r\n\r\n"
        guard case .malformed(let message)? = self.decode([long], maximumMetadataBytes: 50).end else {
            Issue.record("a long extension was accepted")
            return
        }
        #expect(message.contains("larger than 50 bytes"))
        let trailers = "0\r\n" + String(repeating: "T: v\r\n", count: 20) + "\r\n"
        guard case .malformed? = self.decode([trailers], maximumMetadataBytes: 50).end else {
            Issue.record("a long trailer section was accepted")
            return
        }
    }
}

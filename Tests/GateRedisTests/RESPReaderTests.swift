@testable import GateRedis
import NIOCore
import Testing

@Suite("RESPReader (hiredis)")
struct RESPReaderTests {
    static let cases: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("-ERR unknown command\r\n", .error("ERR unknown command")),
        (":-42\r\n", .integer(-42)),
        ("$5\r\nhello\r\n", .bulkString(ByteBuffer(string: "hello"))),
        ("$0\r\n\r\n", .bulkString(ByteBuffer())),
        ("$-1\r\n", .null),
        ("*-1\r\n", .null),
        ("*0\r\n", .array([])),
        ("$4\r\na\r\nb\r\n", .bulkString(ByteBuffer(string: "a\r\nb"))),
        (
            "*3\r\n:1\r\n*2\r\n$1\r\nx\r\n$-1\r\n-WRONGTYPE nope\r\n",
            .array([.integer(1), .array([.bulkString(ByteBuffer(string: "x")), .null]), .error("WRONGTYPE nope")])
        ),
    ]

    @Test("parses every reply type, fed whole", arguments: cases)
    func parsesWhole(wire: String, expected: RESPValue) throws {
        let reader = RESPReader()
        try reader.feed(ByteBuffer(string: wire))
        #expect(try reader.readAll() == [expected])
        #expect(try reader.readAll() == [])
    }

    @Test("parses every reply type fed one byte at a time, with nothing early", arguments: cases)
    func parsesByteByByte(wire: String, expected: RESPValue) throws {
        let reader = RESPReader()
        let bytes = Array(wire.utf8)
        for (index, byte) in bytes.enumerated() {
            try reader.feed(ByteBuffer(bytes: [byte]))
            let replies = try reader.readAll()
            if index < bytes.count - 1 {
                #expect(replies == [], "a reply came out after \(index + 1) of \(bytes.count) bytes")
            } else {
                #expect(replies == [expected])
            }
        }
    }

    @Test("many replies in one read come out in order")
    func manyInOneRead() throws {
        let reader = RESPReader()
        var wire = ByteBuffer()
        for value in 0..<1_000 {
            wire.writeString(":\(value)\r\n")
        }
        try reader.feed(wire)
        #expect(try reader.readAll().map { $0.int ?? -1 } == (0..<1_000).map(Int64.init))
    }

    @Test("bulk strings of one read are slices of one buffer; a later read gets its own")
    func bulkStringsShareTheReadsBuffer() throws {
        let reader = RESPReader()
        try reader.feed(ByteBuffer(string: "$3\r\nabc\r\n*2\r\n$2\r\nde\r\n$-1\r\n$1\r\nf\r\n$2\r\ngh"))
        let first = try reader.readAll()
        #expect(first == [
            .bulkString(ByteBuffer(string: "abc")),
            .array([.bulkString(ByteBuffer(string: "de")), .null]),
            .bulkString(ByteBuffer(string: "f")),
        ])
        try reader.feed(ByteBuffer(string: "\r\n$3\r\nijk\r\n"))
        let second = try reader.readAll()
        #expect(second == [.bulkString(ByteBuffer(string: "gh")), .bulkString(ByteBuffer(string: "ijk"))])
        // The first read's slices are unchanged by the second read's writes.
        #expect(first[0] == .bulkString(ByteBuffer(string: "abc")))
        #expect(first[2] == .bulkString(ByteBuffer(string: "f")))
    }

    @Test("an array split across reads keeps the bulk strings of its first part")
    func arraySplitAcrossReads() throws {
        let reader = RESPReader()
        try reader.feed(ByteBuffer(string: "$3\r\none\r\n*3\r\n$3\r\ntwo\r\n$5\r\nthr"))
        let first = try reader.readAll()
        #expect(first == [.bulkString(ByteBuffer(string: "one"))])
        try reader.feed(ByteBuffer(string: "ee\r\n$4\r\nfour\r\n$4\r\nfive\r\n"))
        let second = try reader.readAll()
        #expect(second == [
            .array([.bulkString(ByteBuffer(string: "two")), .bulkString(ByteBuffer(string: "three")), .bulkString(ByteBuffer(string: "four"))]),
            .bulkString(ByteBuffer(string: "five")),
        ])
        #expect(first == [.bulkString(ByteBuffer(string: "one"))])
    }

    @Test("reads that always end mid-array keep each slice's storage to one read's bytes")
    func arenaDoesNotGrowAcrossReads() throws {
        let reader = RESPReader()
        // Each read holds the tail of one 4-element array and the head of the next.
        let head = "*4\r\n$4\r\naaaa\r\n$4\r\nbbbb\r\n"
        let tail = "$4\r\ncccc\r\n$4\r\ndddd\r\n"
        try reader.feed(ByteBuffer(string: head))
        #expect(try reader.readAll() == [])
        var last: [RESPValue] = []
        for _ in 0..<2_000 {
            try reader.feed(ByteBuffer(string: tail + head))
            last = try reader.readAll()
            #expect(last.count == 1)
        }
        let elements = last.first?.array ?? []
        #expect(elements.map(\.string) == ["aaaa", "bbbb", "cccc", "dddd"])
        for case .bulkString(let bytes) in elements {
            #expect(bytes.storageCapacity <= 1_024, "a slice pins \(bytes.storageCapacity) bytes")
        }
    }

    @Test("good replies before bad bytes are delivered, then the error")
    func goodRepliesBeforeGarbage() throws {
        let reader = RESPReader()
        try reader.feed(ByteBuffer(string: "$2\r\nok\r\n:5\r\n!garbage\r\n"))
        var delivered: [RESPValue] = []
        let error = #expect(throws: RedisError.self) {
            try reader.readReplies { reply in
                delivered.append(reply)
                return true
            }
        }
        #expect(delivered == [.bulkString(ByteBuffer(string: "ok")), .integer(5)])
        #expect(error?.code == .protocolError)
    }

    @Test("garbage is a protocol error that names what was wrong, and stays one", arguments: [
        "hello\r\n", "?1\r\n", ":12a\r\n",
    ])
    func garbage(wire: String) throws {
        let reader = RESPReader()
        try reader.feed(ByteBuffer(string: wire))
        let error = #expect(throws: RedisError.self) { try reader.readAll() }
        #expect(error?.code == .protocolError)
        #expect(error?.message.isEmpty == false)
        let again = #expect(throws: RedisError.self) { try reader.feed(ByteBuffer(string: "+OK\r\n")) }
        #expect(again?.code == .protocolError)
    }

    @Test("a reply larger than the limit is refused before it is buffered whole")
    func tooLarge() throws {
        let reader = RESPReader(maximumReplyBytes: 1_024)
        try reader.feed(ByteBuffer(string: "$1000000\r\n"))
        try reader.feed(ByteBuffer(repeating: UInt8(ascii: "a"), count: 2_000))
        let error = #expect(throws: RedisError.self) { try reader.readAll() }
        #expect(error?.code == .protocolError)
        #expect(error?.message.contains("larger than 1024 bytes") == true)
    }

    @Test("an array of many small elements counts against the limit as it is built")
    func manySmallElements() throws {
        let reader = RESPReader(maximumReplyBytes: 1_024)
        // 50 elements pass the announced-count check; their payloads exceed the byte limit.
        var wire = ByteBuffer(string: "*50\r\n")
        for _ in 0..<50 {
            wire.writeString("$20\r\n01234567890123456789\r\n")
        }
        try reader.feed(wire)
        let error = #expect(throws: RedisError.self) { try reader.readAll() }
        #expect(error?.code == .protocolError)
        #expect(error?.message.contains("larger than 1024 bytes") == true)
    }

    @Test("the limit applies per reply: many small replies in a row are fine")
    func limitIsPerReply() throws {
        let reader = RESPReader(maximumReplyBytes: 1_024)
        for _ in 0..<200 {
            try reader.feed(ByteBuffer(string: "*2\r\n$3\r\nabc\r\n:7\r\n"))
            #expect(try reader.readAll() == [.array([.bulkString(ByteBuffer(string: "abc")), .integer(7)])])
        }
    }

    @Test("an array announcing more elements than the limit is refused")
    func hugeArray() throws {
        let reader = RESPReader(maximumReplyBytes: 1_024)
        try reader.feed(ByteBuffer(string: "*2147483647\r\n"))
        let error = #expect(throws: RedisError.self) { try reader.readAll() }
        #expect(error?.code == .protocolError)
        #expect(error?.message.contains("2147483647 elements") == true)
    }
}

@Suite("RedisCommand encoding")
struct RedisCommandTests {
    @Test("commands become RESP arrays of bulk strings, binary-safe")
    func encodes() {
        var buffer = ByteBuffer()
        RedisCommand("SET", "k", .bytes(ByteBuffer(bytes: [0, 13, 10, 255])), .integer(-120)).encode(into: &buffer)
        let expected: [UInt8] = Array("*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n".utf8) + [0, 13, 10, 255]
            + Array("\r\n$4\r\n-120\r\n".utf8)
        #expect(Array(buffer.readableBytesView) == expected)
    }

    @Test("multi-byte UTF-8 is counted in bytes, not characters")
    func utf8Length() {
        var buffer = ByteBuffer()
        RedisCommand("GET", "票").encode(into: &buffer)
        #expect(String(buffer: buffer) == "*2\r\n$3\r\nGET\r\n$3\r\n票\r\n")
    }

    @Test("AUTH arguments are hidden in descriptions")
    func redactsAuth() {
        #expect(RedisCommand("AUTH", "user", "secret").description == "AUTH ***")
        #expect(RedisCommand("SET", "k", 1).description == "SET k 1")
    }
}

import GateCore
@testable import GateRedis
import NIOCore
import Testing

private func randomValue(depth: Int, using random: inout SplitMix64) -> RESPValue {
    switch Int.random(in: 0..<(depth < 3 ? 7 : 5), using: &random) {
    case 0:
        return .integer(Int64.random(in: -1_000_000...1_000_000, using: &random))
    case 1:
        return .null
    case 2:
        return .simpleString(String(repeating: "k", count: Int.random(in: 0..<20, using: &random)))
    case 3:
        return .error("ERR code \(Int.random(in: 0..<1000, using: &random))")
    case 4:
        let length = Int.random(in: 0..<300, using: &random)
        return .bulkString(ByteBuffer(bytes: (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }))
    default:
        let count = Int.random(in: 0..<6, using: &random)
        return .array((0..<count).map { _ in randomValue(depth: depth + 1, using: &random) })
    }
}

private func encode(_ value: RESPValue, into buffer: inout ByteBuffer) {
    switch value {
    case .simpleString(let text):
        buffer.writeString("+\(text)\r\n")
    case .error(let message):
        buffer.writeString("-\(message)\r\n")
    case .integer(let number):
        buffer.writeString(":\(number)\r\n")
    case .null:
        buffer.writeString("$-1\r\n")
    case .bulkString(let bytes):
        buffer.writeString("$\(bytes.readableBytes)\r\n")
        buffer.writeImmutableBuffer(bytes)
        buffer.writeString("\r\n")
    case .array(let elements):
        buffer.writeString("*\(elements.count)\r\n")
        for element in elements {
            encode(element, into: &buffer)
        }
    }
}

@Suite("RESPReader on randomly split input")
struct RESPReaderRandomSplitTests {
    @Test("random replies fed in random chunks come out equal and in order", arguments: 1...40)
    func randomSplits(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let replies = (0..<Int.random(in: 1..<60, using: &random)).map { _ in randomValue(depth: 0, using: &random) }
        var wire = ByteBuffer()
        for reply in replies {
            encode(reply, into: &wire)
        }
        let reader = RESPReader()
        var parsed: [RESPValue] = []
        while wire.readableBytes > 0 {
            let chunk = min(wire.readableBytes, Int.random(in: 1...400, using: &random))
            try reader.feed(wire.readSlice(length: chunk)!)
            parsed += try reader.readAll()
        }
        #expect(parsed.count == replies.count, "seed \(seed)")
        for (index, (got, expected)) in zip(parsed, replies).enumerated() where got != expected {
            Issue.record("seed \(seed): reply \(index) is \(got), expected \(expected)")
            break
        }
    }
}

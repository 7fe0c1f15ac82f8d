import GateCore
import GateRules
import Testing

@Suite("ByteSize")
struct ByteSizeTests {
    @Test("sizes parse into bytes", arguments: [
        ("0", 0), ("512", 512), ("512B", 512), ("64KiB", 65_536), ("1MiB", 1_048_576), ("2GiB", 2_147_483_648),
        ("0KiB", 0),
    ])
    func parses(text: String, bytes: Int) throws {
        #expect(try ByteSize.parse(text) == bytes)
    }

    @Test("bad sizes are refused with a code and a hint", arguments: [
        ("", ValueParseError.Code.invalidNumber, "write e.g."),
        ("KiB", .invalidNumber, "write e.g."),
        ("-1KiB", .invalidNumber, "write e.g."),
        ("1.5MiB", .invalidNumber, "1536KiB"),
        ("64KB", .unknownUnit, "did you mean 64KiB?"),
        ("64k", .unknownUnit, "did you mean 64KiB?"),
        ("1mib", .unknownUnit, "did you mean 1MiB?"),
        ("2G", .unknownUnit, "did you mean 2GiB?"),
        ("64 KiB", .unknownUnit, "B, KiB, MiB or GiB"),
        ("10x", .unknownUnit, "B, KiB, MiB or GiB"),
        ("99999999999999999999", .tooLarge, "smaller"),
        ("9999999999999GiB", .tooLarge, "smaller"),
    ])
    func refuses(text: String, code: ValueParseError.Code, hint: String) {
        let error = #expect(throws: ByteSize.ParseError.self) { try ByteSize.parse(text) }
        #expect(error?.code == code, "\(error?.description ?? "")")
        #expect(error?.hint.contains(hint) == true, "\(error?.description ?? "")")
        #expect(error?.text == text)
        #expect(error?.description.hasPrefix("'\(text)' is not a byte size: ") == true)
    }
}

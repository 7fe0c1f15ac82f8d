import GateCore
import Testing

@Suite("CIDR block")
struct CIDRBlockTests {
    @Test("valid blocks parse and print in canonical form", arguments: [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("192.168.0.0/23", "192.168.0.0/23"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("203.0.113.7/32", "203.0.113.7/32"),
        ("203.0.113.7", "203.0.113.7/32"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:0DB8:0000::/48", "2001:db8::/48"),
        ("::/0", "::/0"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("::1/128", "::1/128"),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("::ffff:0:0/96", "0.0.0.0/0"),
        ("::ffff:192.0.2.1", "192.0.2.1/32"),
    ])
    func parses(text: String, canonical: String) throws {
        let block = try CIDRBlock(text)
        #expect(block.description == canonical)
        #expect(try CIDRBlock(canonical) == block)
    }

    @Test("invalid blocks are refused with the expected code", arguments: [
        ("", CIDRBlock.ParseError.Code.notAnAddress),
        ("/8", .notAnAddress),
        ("10.0.0/8", .notAnAddress),
        ("10.0.0.256/32", .notAnAddress),
        ("[2001:db8::]/32", .notAnAddress),
        ("fe80::%eth0/64", .notAnAddress),
        (" 10.0.0.0/8", .notAnAddress),
        ("example.com/24", .notAnAddress),
        ("10.0.0.0/", .invalidPrefixLength),
        ("10.0.0.0/+8", .invalidPrefixLength),
        ("10.0.0.0/-1", .invalidPrefixLength),
        ("10.0.0.0/08", .invalidPrefixLength),
        ("10.0.0.0/8 ", .invalidPrefixLength),
        ("10.0.0.0/ 8", .invalidPrefixLength),
        ("10.0.0.0/8/8", .invalidPrefixLength),
        ("10.0.0.0/eight", .invalidPrefixLength),
        ("10.0.0.0/0x8", .invalidPrefixLength),
        ("10.0.0.0/33", .prefixLengthOutOfRange),
        ("10.0.0.0/100", .prefixLengthOutOfRange),
        ("10.0.0.0/99999999999999999999999", .prefixLengthOutOfRange),
        ("2001:db8::/129", .prefixLengthOutOfRange),
        ("::ffff:0:0/95", .prefixLengthOutOfRange),
        ("10.0.0.1/8", .hostBitsSet),
        ("192.168.1.0/23", .hostBitsSet),
        ("0.0.0.1/0", .hostBitsSet),
        ("2001:db8::1/32", .hostBitsSet),
        ("::ffff:10.0.0.1/104", .hostBitsSet),
    ])
    func refuses(text: String, code: CIDRBlock.ParseError.Code) {
        let error = #expect(throws: CIDRBlock.ParseError.self) { try CIDRBlock(text) }
        #expect(error?.code == code, "\(error?.description ?? "")")
        #expect(error?.text == text)
    }

    @Test("host bits set: the hint names the network and the single host", arguments: [
        ("10.0.0.1/8", "10.0.0.0/8", "10.0.0.1/32"),
        ("192.168.1.7/23", "192.168.0.0/23", "192.168.1.7/32"),
        ("2001:db8::1/32", "2001:db8::/32", "2001:db8::1/128"),
        ("::ffff:10.0.0.1/104", "10.0.0.0/8", "10.0.0.1/32"),
    ])
    func hostBitsHint(text: String, network: String, host: String) {
        let error = #expect(throws: CIDRBlock.ParseError.self) { try CIDRBlock(text) }
        #expect(error?.hint.contains("write \(network) for the network") == true, "\(error?.description ?? "")")
        #expect(error?.hint.contains(host) == true, "\(error?.description ?? "")")
        #expect(error?.description.contains(text) == true)
    }

    @Test("messages say what is wrong", arguments: [
        ("10.0.0.0/33", "prefix length 33 is out of range for an IPv4 address"),
        ("2001:db8::/129", "prefix length 129 is out of range for an IPv6 address"),
        ("10.0.0.0/+8", "'+8' is not a whole number"),
        ("10.0.0.0/08", "leading zero"),
        ("10.0.0.0/", "nothing follows '/'"),
        ("nonsense/8", "'nonsense' is not an IPv4 or IPv6 address"),
        ("/8", "the address is missing"),
    ])
    func messages(text: String, problem: String) {
        let error = #expect(throws: CIDRBlock.ParseError.self) { try CIDRBlock(text) }
        #expect(error?.problem.contains(problem) == true, "\(error?.description ?? "")")
    }

    @Test("contains: first and last address of the block, and just outside", arguments: [
        ("10.0.0.0/8", "10.0.0.0", true),
        ("10.0.0.0/8", "10.255.255.255", true),
        ("10.0.0.0/8", "9.255.255.255", false),
        ("10.0.0.0/8", "11.0.0.0", false),
        ("192.168.0.0/23", "192.168.0.0", true),
        ("192.168.0.0/23", "192.168.1.255", true),
        ("192.168.0.0/23", "192.167.255.255", false),
        ("192.168.0.0/23", "192.168.2.0", false),
        ("203.0.113.7/32", "203.0.113.7", true),
        ("203.0.113.7/32", "203.0.113.6", false),
        ("203.0.113.7/32", "203.0.113.8", false),
        ("0.0.0.0/0", "0.0.0.0", true),
        ("0.0.0.0/0", "255.255.255.255", true),
        ("2001:db8::/32", "2001:db8::", true),
        ("2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true),
        ("2001:db8::/32", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ("2001:db8::/32", "2001:db9::", false),
        ("2001:db8:0:8000::/49", "2001:db8:0:8000::", true),
        ("2001:db8:0:8000::/49", "2001:db8:0:ffff:ffff:ffff:ffff:ffff", true),
        ("2001:db8:0:8000::/49", "2001:db8:0:7fff:ffff:ffff:ffff:ffff", false),
        ("2001:db8::1/128", "2001:db8::1", true),
        ("2001:db8::1/128", "2001:db8::2", false),
        ("::/0", "::", true),
        ("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
    ])
    func contains(block: String, address: String, expected: Bool) throws {
        let block = try CIDRBlock(block)
        let address = try #require(IPAddress(address))
        #expect(block.contains(address) == expected)
    }

    @Test("an IPv4 block never contains an IPv6 address, nor the other way round", arguments: [
        ("0.0.0.0/0", "::"),
        ("0.0.0.0/0", "2001:db8::1"),
        ("0.0.0.0/0", "::a00:1"),
        ("::/0", "10.0.0.1"),
        ("::/0", "::ffff:10.0.0.1"),
        ("::/96", "0.0.0.1"),
    ])
    func familiesDoNotMix(block: String, address: String) throws {
        let block = try CIDRBlock(block)
        let address = try #require(IPAddress(address))
        #expect(block.family != address.family)
        #expect(!block.contains(address))
    }

    @Test("an IPv4-mapped block matches the unmapped IPv4 addresses")
    func mappedBlock() throws {
        let block = try CIDRBlock("::ffff:10.0.0.0/104")
        #expect(block.family == .v4 && block.prefixLength == 8)
        #expect(block.contains(try #require(IPAddress("10.1.2.3"))))
        #expect(block.contains(try #require(IPAddress("::ffff:10.1.2.3"))))
        #expect(!block.contains(try #require(IPAddress("11.0.0.0"))))
    }
}

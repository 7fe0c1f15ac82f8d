import GateCore
import Testing

@Suite("Trusted proxies")
struct TrustedProxiesTests {
    func address(_ text: String) throws -> IPAddress {
        try #require(IPAddress(text))
    }

    @Test("contains an address of any block, of either family", arguments: [
        ("10.1.2.3", true), ("10.255.255.255", true), ("11.0.0.0", false),
        ("192.168.7.1", true), ("192.168.7.0", false), ("192.168.7.2", false),
        ("172.16.0.0", true), ("172.31.255.255", true), ("172.32.0.0", false),
        ("2001:db8::1", true), ("2001:db8:ffff::", true), ("2001:db9::", false),
        ("fd00::5", true), ("fd00::6", false), ("::1", false), ("127.0.0.1", false),
    ])
    func contains(text: String, expected: Bool) throws {
        let proxies = try TrustedProxies(parsing: ["10.0.0.0/8", "192.168.7.1", "172.16.0.0/12", "2001:db8::/32", "fd00::5/128"])
        #expect(proxies.contains(try self.address(text)) == expected)
    }

    @Test("no proxies trust nothing")
    func none() throws {
        #expect(TrustedProxies.none.isEmpty)
        #expect(!TrustedProxies.none.contains(try self.address("10.0.0.1")))
        #expect(!TrustedProxies.none.contains(try self.address("::1")))
        #expect(TrustedProxies.none.description == "none")
    }

    @Test("every bad entry is reported with its index; good entries do not hide them")
    func collectsEveryError() {
        let entries = ["10.0.0.0/8", "10.0.0.1/8", "2001:db8::/32", "nonsense", "10.0.0.0/33", "", "192.168.0.0/+16"]
        let error = #expect(throws: TrustedProxies.ParseError.self) { try TrustedProxies(parsing: entries) }
        #expect(error?.entries.map(\.index) == [1, 3, 4, 5, 6])
        #expect(error?.entries.map(\.entry) == ["10.0.0.1/8", "nonsense", "10.0.0.0/33", "", "192.168.0.0/+16"])
        #expect(error?.entries.map(\.error.code) == [.hostBitsSet, .notAnAddress, .prefixLengthOutOfRange, .notAnAddress, .invalidPrefixLength])
        let message = error?.description ?? ""
        #expect(message.hasPrefix("5 trusted proxy entries did not parse"), "\(message)")
        #expect(message.contains("trusted proxy [1]: '10.0.0.1/8' is not a CIDR block"), "\(message)")
        #expect(message.contains("write 10.0.0.0/8 for the network"), "\(message)")
        #expect(message.contains("trusted proxy [6]: '192.168.0.0/+16'"), "\(message)")
    }

    @Test("overlapping and duplicate blocks are harmless; description lists the blocks as given")
    func overlapping() throws {
        let proxies = try TrustedProxies(parsing: ["10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/8", "10.1.2.3"])
        #expect(proxies.blocks.count == 4)
        #expect(proxies.description == "10.0.0.0/8, 10.1.0.0/16, 10.0.0.0/8, 10.1.2.3/32")
        #expect(proxies.contains(try self.address("10.1.2.3")))
        #expect(proxies.contains(try self.address("10.200.0.1")))
        #expect(!proxies.contains(try self.address("11.1.2.3")))
    }

    @Test("many blocks answer exactly as a scan over every block does")
    func manyBlocksMatchLinearScan() throws {
        var entries: [String] = []
        for third in 0..<200 {
            entries.append("198.51.\(third).\(third)")
        }
        for length in stride(from: 9, through: 30, by: 3) {
            entries.append("100.0.0.0/\(length)")
            entries.append(try CIDRBlock("172.\(length).0.0/16").description)
        }
        for group in 0..<100 {
            entries.append("2001:db8:\(String(group, radix: 16))::/48")
            entries.append("fd00::\(String(group, radix: 16))")
        }
        entries.append("2001:db8:8000::/33")
        let blocks = try entries.map { try CIDRBlock($0) }
        let proxies = TrustedProxies(blocks)

        var probes: [IPAddress] = []
        for block in blocks {
            let bytes = block.network.bytes
            probes.append(block.network)
            var last = bytes
            var before = bytes
            let hostBits = bytes.count * 8 - block.prefixLength
            for bit in 0..<hostBits {
                last[bytes.count - 1 - bit / 8] |= UInt8(1) << (bit % 8)
            }
            if let index = before.lastIndex(where: { $0 != 0 }) {
                before[index] -= 1
                for later in (index + 1)..<before.count {
                    before[later] = 0xFF
                }
            }
            probes.append(try #require(IPAddress(bytes: last)))
            probes.append(try #require(IPAddress(bytes: before)))
        }
        var trustedCount = 0
        for probe in probes {
            let expected = blocks.contains { $0.contains(probe) }
            #expect(proxies.contains(probe) == expected, "\(probe)")
            trustedCount += expected ? 1 : 0
        }
        // The probes include both answers in quantity, so the comparison above means something.
        #expect(trustedCount > 400 && probes.count - trustedCount > 100)
    }
}

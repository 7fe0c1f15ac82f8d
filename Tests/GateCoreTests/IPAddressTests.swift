import GateCore
import Testing

@Suite("IP address")
struct IPAddressTests {
    @Test("valid text parses and prints in canonical form", arguments: [
        ("203.0.113.7", "203.0.113.7"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::", "::"),
        ("::1", "::1"),
        ("fe80::", "fe80::"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
    ])
    func parses(text: String, canonical: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address.description == canonical)
        #expect(IPAddress(canonical) == address)
    }

    @Test("invalid text is refused", arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "1.2.3.4 ", " 1.2.3.4", "a.b.c.d",
        ":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "::g", "1:", ":1",
        "[::1]", "fe80::1%eth0", "::1.2.3", "1.2.3.4::", "1:2:3:4:5:6:7::8:9",
    ])
    func refuses(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test("bytes of the wrong length are refused; IPv4-mapped IPv6 bytes become IPv4")
    func bytes() throws {
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
        let mapped = try #require(IPAddress(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 0, 0, 1]))
        #expect(mapped.family == .v4 && mapped.description == "10.0.0.1")
        #expect(IPAddress(bytes: [127, 0, 0, 1]) == IPAddress("127.0.0.1"))
    }
}

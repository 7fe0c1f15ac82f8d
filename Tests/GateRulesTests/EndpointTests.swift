import GateCore
import GateRules
import Testing

@Suite("Endpoint")
struct EndpointTests {
    @Test("addresses parse into canonical host and port", arguments: [
        ("0.0.0.0:8080", "0.0.0.0", 8080, "0.0.0.0:8080"),
        ("127.0.0.1:0", "127.0.0.1", 0, "127.0.0.1:0"),
        ("10.1.2.3:65535", "10.1.2.3", 65535, "10.1.2.3:65535"),
        ("[::1]:443", "::1", 443, "[::1]:443"),
        ("[::]:8080", "::", 8080, "[::]:8080"),
        ("[2001:DB8:0::1]:80", "2001:db8::1", 80, "[2001:db8::1]:80"),
        ("[::ffff:10.0.0.1]:80", "10.0.0.1", 80, "10.0.0.1:80"),
        ("localhost:6379", "localhost", 6379, "localhost:6379"),
        ("Ticket-Node-1.Example.com:8081", "ticket-node-1.example.com", 8081, "ticket-node-1.example.com:8081"),
    ])
    func parses(text: String, host: String, port: Int, description: String) throws {
        let endpoint = try Endpoint.parse(text)
        #expect(endpoint == Endpoint(host: host, port: port))
        #expect(endpoint.description == description)
    }

    @Test("bad addresses are refused with a code", arguments: [
        ("127.0.0.1", ValueParseError.Code.missingPort),
        ("127.0.0.1:", .missingPort),
        ("[::1]", .missingPort),
        ("[::1]8080", .missingPort),
        ("127.0.0.1:65536", .invalidPort),
        ("127.0.0.1:-1", .invalidPort),
        ("127.0.0.1:08080", .invalidPort),
        ("127.0.0.1:http", .invalidPort),
        ("127.0.0.1:123456", .invalidPort),
        (":8080", .invalidHost),
        ("::1:8080", .invalidHost),
        ("[::1:8080", .invalidHost),
        ("[127.0.0.1]:80", .invalidHost),
        ("[fe80::1%eth0]:80", .invalidHost),
        ("256.0.0.1:80", .invalidHost),
        ("010.0.0.1:80", .invalidHost),
        ("-node.example:80", .invalidHost),
        ("node_1:80", .invalidHost),
        ("node..example:80", .invalidHost),
        ("http://node:80", .invalidHost),
    ])
    func refuses(text: String, code: ValueParseError.Code) {
        let error = #expect(throws: Endpoint.ParseError.self) { try Endpoint.parse(text) }
        #expect(error?.code == code, "\(error?.description ?? "")")
        #expect(error?.text == text)
        #expect(error?.description.hasPrefix("'\(text)' is not an address: ") == true)
    }

    @Test("an IPv6 address without brackets says to add them")
    func ipv6NeedsBrackets() {
        let error = #expect(throws: Endpoint.ParseError.self) { try Endpoint.parse("2001:db8::1:80") }
        #expect(error?.hint.contains("[::1]:8080") == true)
    }
}

import GateCore
import Testing

/// The v2 signature, written out here rather than taken from the parser.
private let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

/// What a client sends once the proxy has written its header.
private let applicationData = Array("GET / HTTP/1.1\r\nHost: tickets.example\r\n\r\n".utf8)

/// A v2 header: signature, version/command, family/transport, length (the payload's unless
/// `announcedLength` says otherwise) and the payload.
private func v2Header(command: UInt8 = 0x21, family: UInt8, payload: [UInt8] = [], announcedLength: Int? = nil) -> [UInt8] {
    let length = announcedLength ?? payload.count
    return v2Signature + [command, family, UInt8(length >> 8), UInt8(length & 0xFF)] + payload
}

/// One TLV: type, 2-byte big-endian length, value.
private func tlv(_ type: UInt8, _ value: [UInt8]) -> [UInt8] {
    [type, UInt8(value.count >> 8), UInt8(value.count & 0xFF)] + value
}

private func endpoint(_ address: String, _ port: UInt16) -> ProxyEndpoint {
    ProxyEndpoint(address: IPAddress(address)!, port: port)
}

/// 192.0.2.1:56324 → 198.51.100.7:443.
private let inetBlock: [UInt8] = [192, 0, 2, 1, 198, 51, 100, 7, 0xDC, 0x04, 0x01, 0xBB]
/// [2001:db8::1]:56324 → [2001:db8::2]:443.
private let inet6Block: [UInt8] =
    [0x20, 0x01, 0x0D, 0xB8] + Array(repeating: 0, count: 11) + [1]
    + [0x20, 0x01, 0x0D, 0xB8] + Array(repeating: 0, count: 11) + [2]
    + [0xDC, 0x04, 0x01, 0xBB]
/// Two 108-byte socket paths.
private let unixBlock: [UInt8] = {
    let path = Array("/run/haproxy/gate.sock".utf8)
    let padded = path + Array(repeating: 0, count: 108 - path.count)
    return padded + padded
}()

private let longestIPv6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"

struct ValidProxyHeaderCase: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let expected: ProxyHeader

    init(_ name: String, _ bytes: [UInt8], _ expected: ProxyHeader) {
        self.name = name
        self.bytes = bytes
        self.expected = expected
    }

    init(_ name: String, _ line: String, _ expected: ProxyHeader) {
        self.init(name, Array(line.utf8), expected)
    }

    var testDescription: String {
        self.name
    }
}

struct MalformedProxyHeaderCase: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let code: ProxyProtocolError.Code

    init(_ name: String, _ bytes: [UInt8], _ code: ProxyProtocolError.Code) {
        self.name = name
        self.bytes = bytes
        self.code = code
    }

    init(_ name: String, _ line: String, _ code: ProxyProtocolError.Code) {
        self.init(name, Array(line.utf8), code)
    }

    var testDescription: String {
        "\(self.name) → \(self.code)"
    }
}

private let validV1Headers: [ValidProxyHeaderCase] = [
    ValidProxyHeaderCase(
        "TCP4",
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n",
        ProxyHeader(version: .v1, command: .proxy, source: endpoint("192.0.2.1", 56324), destination: endpoint("198.51.100.7", 443))
    ),
    ValidProxyHeaderCase(
        "TCP4 with the extreme addresses and ports 0 and 9",
        "PROXY TCP4 0.0.0.0 255.255.255.255 0 9\r\n",
        ProxyHeader(version: .v1, command: .proxy, source: endpoint("0.0.0.0", 0), destination: endpoint("255.255.255.255", 9))
    ),
    ValidProxyHeaderCase(
        "TCP6",
        "PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n",
        ProxyHeader(version: .v1, command: .proxy, source: endpoint("2001:db8::1", 65535), destination: endpoint("2001:db8::2", 0))
    ),
    ValidProxyHeaderCase(
        "TCP6, longest line (104 bytes)",
        "PROXY TCP6 \(longestIPv6) \(longestIPv6) 65535 65535\r\n",
        ProxyHeader(version: .v1, command: .proxy, source: endpoint(longestIPv6, 65535), destination: endpoint(longestIPv6, 65535))
    ),
    ValidProxyHeaderCase(
        "TCP6 with an IPv4-mapped source (unmapped)",
        "PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1 2\r\n",
        ProxyHeader(version: .v1, command: .proxy, source: endpoint("192.0.2.1", 1), destination: endpoint("2001:db8::2", 2))
    ),
    ValidProxyHeaderCase(
        "UNKNOWN",
        "PROXY UNKNOWN\r\n",
        ProxyHeader(version: .v1, command: .proxy, source: nil, destination: nil)
    ),
    ValidProxyHeaderCase(
        "UNKNOWN with addresses, the longest line allowed (107 bytes)",
        "PROXY UNKNOWN \(longestIPv6) \(longestIPv6) 65535 65535\r\n",
        ProxyHeader(version: .v1, command: .proxy, source: nil, destination: nil)
    ),
]

private let validV2Headers: [ValidProxyHeaderCase] = [
    ValidProxyHeaderCase(
        "v2 PROXY TCP over IPv4",
        v2Header(family: 0x11, payload: inetBlock),
        ProxyHeader(version: .v2, command: .proxy, source: endpoint("192.0.2.1", 56324), destination: endpoint("198.51.100.7", 443))
    ),
    ValidProxyHeaderCase(
        "v2 PROXY TCP over IPv6",
        v2Header(family: 0x21, payload: inet6Block),
        ProxyHeader(version: .v2, command: .proxy, source: endpoint("2001:db8::1", 56324), destination: endpoint("2001:db8::2", 443))
    ),
    ValidProxyHeaderCase(
        "v2 PROXY TCP over IPv6 with an IPv4-mapped source (unmapped)",
        v2Header(family: 0x21, payload: Array(repeating: 0, count: 10) + [0xFF, 0xFF, 192, 0, 2, 1] + inet6Block[16...]),
        ProxyHeader(version: .v2, command: .proxy, source: endpoint("192.0.2.1", 56324), destination: endpoint("2001:db8::2", 443))
    ),
    ValidProxyHeaderCase(
        "v2 PROXY TCP over IPv4 with TLVs (ALPN, authority, empty NOOP)",
        v2Header(family: 0x11, payload: inetBlock + tlv(0x01, Array("h2".utf8)) + tlv(0x02, Array("tickets.example".utf8)) + tlv(0x04, [])),
        ProxyHeader(version: .v2, command: .proxy, source: endpoint("192.0.2.1", 56324), destination: endpoint("198.51.100.7", 443))
    ),
    ValidProxyHeaderCase(
        "v2 PROXY with the largest payload accepted",
        v2Header(
            family: 0x11,
            payload: inetBlock + tlv(0x04, Array(repeating: 0, count: ProxyProtocolParser.maximumV2PayloadLength - inetBlock.count - 3))
        ),
        ProxyHeader(version: .v2, command: .proxy, source: endpoint("192.0.2.1", 56324), destination: endpoint("198.51.100.7", 443))
    ),
    ValidProxyHeaderCase(
        "v2 LOCAL, UNSPEC, empty",
        v2Header(command: 0x20, family: 0x00),
        ProxyHeader(version: .v2, command: .local, source: nil, destination: nil)
    ),
    ValidProxyHeaderCase(
        "v2 LOCAL with IPv4 addresses (ignored)",
        v2Header(command: 0x20, family: 0x11, payload: inetBlock),
        ProxyHeader(version: .v2, command: .local, source: nil, destination: nil)
    ),
    ValidProxyHeaderCase(
        "v2 LOCAL with an undefined family byte and opaque payload (family ignored)",
        v2Header(command: 0x20, family: 0xFF, payload: [1, 2, 3]),
        ProxyHeader(version: .v2, command: .local, source: nil, destination: nil)
    ),
    ValidProxyHeaderCase(
        "v2 PROXY UNIX stream with a TLV",
        v2Header(family: 0x31, payload: unixBlock + tlv(0x01, Array("http/1.1".utf8))),
        ProxyHeader(version: .v2, command: .proxy, source: nil, destination: nil)
    ),
    ValidProxyHeaderCase(
        "v2 PROXY UNSPEC, empty",
        v2Header(family: 0x00),
        ProxyHeader(version: .v2, command: .proxy, source: nil, destination: nil)
    ),
    ValidProxyHeaderCase(
        "v2 PROXY UNSPEC with an opaque payload",
        v2Header(family: 0x00, payload: [0xFF, 0xFF]),
        ProxyHeader(version: .v2, command: .proxy, source: nil, destination: nil)
    ),
]

private let malformedHeaders: [MalformedProxyHeaderCase] = [
    // Neither signature.
    MalformedProxyHeaderCase("an HTTP request", "GET / HTTP/1.1\r\nHost: tickets.example\r\n\r\n", .notProxyProtocol),
    MalformedProxyHeaderCase("the first byte of an HTTP request", "G", .notProxyProtocol),
    MalformedProxyHeaderCase("a TLS ClientHello", [0x16, 0x03, 0x01, 0x02, 0x00], .notProxyProtocol),
    MalformedProxyHeaderCase("lower-case proxy", "proxy TCP4 192.0.2.1 198.51.100.7 56324 443\r\n", .notProxyProtocol),
    MalformedProxyHeaderCase("PROXY without a space", "PROXY\r\n", .notProxyProtocol),
    MalformedProxyHeaderCase("v2 signature with a wrong last byte", Array(v2Signature.dropLast()) + [0x0B, 0x21, 0x11, 0x00, 0x0C] + inetBlock, .notProxyProtocol),
    MalformedProxyHeaderCase("half a v2 signature, then text", Array(v2Signature.prefix(6)) + Array("PROXY ".utf8), .notProxyProtocol),
    // v1 line.
    MalformedProxyHeaderCase("v1, 107 bytes without CRLF", "PROXY UNKNOWN " + String(repeating: "x", count: 93), .lineTooLong),
    MalformedProxyHeaderCase("v1, 108-byte line", "PROXY UNKNOWN " + String(repeating: "x", count: 92) + "\r\n", .lineTooLong),
    MalformedProxyHeaderCase("v1 TCP4 ending in a bare LF", "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\n", .badLineEnding),
    MalformedProxyHeaderCase("v1 UNKNOWN ending in a bare LF", "PROXY UNKNOWN\n", .badLineEnding),
    MalformedProxyHeaderCase("v1 empty line", "PROXY \r\n", .malformedLine),
    MalformedProxyHeaderCase("v1 double space after PROXY", "PROXY  TCP4 192.0.2.1 198.51.100.7 56324 443\r\n", .malformedLine),
    MalformedProxyHeaderCase("v1 double space between addresses", "PROXY TCP4 192.0.2.1  198.51.100.7 56324 443\r\n", .malformedLine),
    MalformedProxyHeaderCase("v1 space before CRLF", "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443 \r\n", .malformedLine),
    MalformedProxyHeaderCase("v1 missing destination port", "PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n", .malformedLine),
    MalformedProxyHeaderCase("v1 protocol only", "PROXY TCP6\r\n", .malformedLine),
    MalformedProxyHeaderCase("v1 extra field", "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443 80\r\n", .malformedLine),
    MalformedProxyHeaderCase("v1 UDP4", "PROXY UDP4 192.0.2.1 198.51.100.7 56324 443\r\n", .unknownProtocol),
    MalformedProxyHeaderCase("v1 lower-case tcp4", "PROXY tcp4 192.0.2.1 198.51.100.7 56324 443\r\n", .unknownProtocol),
    // v1 addresses.
    MalformedProxyHeaderCase("v1 three-part IPv4 source", "PROXY TCP4 192.0.2 198.51.100.7 56324 443\r\n", .invalidAddress),
    MalformedProxyHeaderCase("v1 destination octet above 255", "PROXY TCP4 192.0.2.1 198.51.100.256 56324 443\r\n", .invalidAddress),
    MalformedProxyHeaderCase("v1 host name", "PROXY TCP4 localhost 198.51.100.7 56324 443\r\n", .invalidAddress),
    MalformedProxyHeaderCase("v1 bracketed IPv6", "PROXY TCP6 [2001:db8::1] 2001:db8::2 56324 443\r\n", .invalidAddress),
    MalformedProxyHeaderCase("v1 TCP4 with an IPv6 source", "PROXY TCP4 2001:db8::1 198.51.100.7 56324 443\r\n", .addressFamilyMismatch),
    MalformedProxyHeaderCase("v1 TCP4 with an IPv4-mapped IPv6 source", "PROXY TCP4 ::ffff:192.0.2.1 198.51.100.7 56324 443\r\n", .addressFamilyMismatch),
    MalformedProxyHeaderCase("v1 TCP6 with an IPv4 destination", "PROXY TCP6 2001:db8::1 198.51.100.7 56324 443\r\n", .addressFamilyMismatch),
    // v1 ports.
    MalformedProxyHeaderCase("v1 port 65536", "PROXY TCP4 192.0.2.1 198.51.100.7 65536 443\r\n", .invalidPort),
    MalformedProxyHeaderCase("v1 port 99999", "PROXY TCP4 192.0.2.1 198.51.100.7 56324 99999\r\n", .invalidPort),
    MalformedProxyHeaderCase("v1 six-digit port", "PROXY TCP4 192.0.2.1 198.51.100.7 123456 443\r\n", .invalidPort),
    MalformedProxyHeaderCase("v1 port with a leading zero", "PROXY TCP4 192.0.2.1 198.51.100.7 56324 0443\r\n", .invalidPort),
    MalformedProxyHeaderCase("v1 port 00", "PROXY TCP4 192.0.2.1 198.51.100.7 00 443\r\n", .invalidPort),
    MalformedProxyHeaderCase("v1 port with a plus sign", "PROXY TCP4 192.0.2.1 198.51.100.7 +80 443\r\n", .invalidPort),
    MalformedProxyHeaderCase("v1 negative port", "PROXY TCP4 192.0.2.1 198.51.100.7 56324 -1\r\n", .invalidPort),
    MalformedProxyHeaderCase("v1 port with a letter", "PROXY TCP4 192.0.2.1 198.51.100.7 8o 443\r\n", .invalidPort),
    // v2 fixed bytes; the short ones show the refusal comes before the rest arrives.
    MalformedProxyHeaderCase("v2 version nibble 1", v2Header(command: 0x11, family: 0x11, payload: inetBlock), .invalidVersion),
    MalformedProxyHeaderCase("v2 version nibble 3", v2Header(command: 0x31, family: 0x11, payload: inetBlock), .invalidVersion),
    MalformedProxyHeaderCase("v2 version nibble 0, 13 bytes so far", v2Signature + [0x01], .invalidVersion),
    MalformedProxyHeaderCase("v2 command 2", v2Header(command: 0x22, family: 0x11, payload: inetBlock), .invalidCommand),
    MalformedProxyHeaderCase("v2 command 15, 13 bytes so far", v2Signature + [0x2F], .invalidCommand),
    MalformedProxyHeaderCase("v2 family nibble 4", v2Header(family: 0x41, payload: inetBlock), .unknownAddressFamily),
    MalformedProxyHeaderCase("v2 family nibble 15, 14 bytes so far", v2Signature + [0x21, 0xF1], .unknownAddressFamily),
    MalformedProxyHeaderCase("v2 transport nibble 3", v2Header(family: 0x13, payload: inetBlock), .unknownTransport),
    MalformedProxyHeaderCase("v2 UNSPEC family with STREAM", v2Header(family: 0x01), .familyTransportMismatch),
    MalformedProxyHeaderCase("v2 INET with UNSPEC transport", v2Header(family: 0x10, payload: inetBlock), .familyTransportMismatch),
    MalformedProxyHeaderCase("v2 UDP over IPv4", v2Header(family: 0x12, payload: inetBlock), .datagramTransport),
    MalformedProxyHeaderCase("v2 UDP over IPv6", v2Header(family: 0x22, payload: inet6Block), .datagramTransport),
    MalformedProxyHeaderCase("v2 UNIX datagram", v2Header(family: 0x32, payload: unixBlock), .datagramTransport),
    // v2 length.
    MalformedProxyHeaderCase("v2 PROXY announcing one byte too many, 16 bytes so far",
                    v2Header(family: 0x11, announcedLength: ProxyProtocolParser.maximumV2PayloadLength + 1), .headerTooLarge),
    MalformedProxyHeaderCase("v2 LOCAL announcing 65535 bytes, 16 bytes so far", v2Header(command: 0x20, family: 0x00, announcedLength: 0xFFFF), .headerTooLarge),
    MalformedProxyHeaderCase("v2 INET with 11 bytes", v2Header(family: 0x11, payload: Array(inetBlock.prefix(11))), .truncatedAddressBlock),
    MalformedProxyHeaderCase("v2 INET announcing 0 bytes, 16 bytes so far", v2Header(family: 0x11, announcedLength: 0), .truncatedAddressBlock),
    MalformedProxyHeaderCase("v2 INET6 with 35 bytes", v2Header(family: 0x21, payload: Array(inet6Block.prefix(35))), .truncatedAddressBlock),
    MalformedProxyHeaderCase("v2 UNIX with 215 bytes", v2Header(family: 0x31, payload: Array(unixBlock.prefix(215))), .truncatedAddressBlock),
    // v2 TLVs.
    MalformedProxyHeaderCase("v2 TLV announcing 5 bytes with 2 left", v2Header(family: 0x11, payload: inetBlock + [0x01, 0x00, 0x05] + Array("h2".utf8)), .malformedTLV),
    MalformedProxyHeaderCase("v2 TLV overrunning after a good one",
                    v2Header(family: 0x21, payload: inet6Block + tlv(0x04, []) + [0x02, 0x01, 0x00, 0x61]), .malformedTLV),
    MalformedProxyHeaderCase("v2 TLV cut after its type and one length byte", v2Header(family: 0x11, payload: inetBlock + [0x04, 0x00]), .malformedTLV),
    MalformedProxyHeaderCase("v2 UNIX TLV overrunning", v2Header(family: 0x31, payload: unixBlock + [0x01, 0xFF, 0xFF]), .malformedTLV),
]

@Suite("PROXY protocol parser")
struct ProxyProtocolParserTests {
    @Test("a valid header parses, and consumed stops exactly where the application data starts",
          arguments: validV1Headers + validV2Headers)
    func parsesValidHeader(_ valid: ValidProxyHeaderCase) {
        let received = valid.bytes + applicationData
        let outcome = ProxyProtocolParser.parse(received)
        #expect(outcome == .parsed(valid.expected, consumed: valid.bytes.count))
        if case .parsed(_, let consumed) = outcome {
            #expect(Array(received.dropFirst(consumed)) == applicationData)
        }
        #expect(ProxyProtocolParser.parse(valid.bytes) == .parsed(valid.expected, consumed: valid.bytes.count))
    }

    @Test("every proper prefix of a valid header needs more data", arguments: validV1Headers + validV2Headers)
    func prefixesNeedMoreData(_ valid: ValidProxyHeaderCase) {
        let refusedLengths = (0..<valid.bytes.count).filter { length in
            ProxyProtocolParser.parse(valid.bytes.prefix(length)) != .needMoreData
        }
        #expect(refusedLengths.isEmpty)
    }

    @Test("a malformed header is refused with its code", arguments: malformedHeaders)
    func refusesMalformedHeader(_ malformed: MalformedProxyHeaderCase) {
        let outcome = ProxyProtocolParser.parse(malformed.bytes)
        guard case .invalid(let error) = outcome else {
            Issue.record("expected \(malformed.code), got \(outcome)")
            return
        }
        #expect(error.code == malformed.code)
        // More bytes never turn a refusal into a header or another refusal.
        guard case .invalid(let later) = ProxyProtocolParser.parse(malformed.bytes + applicationData) else {
            Issue.record("refused at \(malformed.bytes.count) bytes, not refused with more")
            return
        }
        #expect(later.code == malformed.code)
    }

    @Test("any collection of bytes is read from its own start index")
    func readsOtherCollections() {
        let line = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n"
        let expectedV1 = ProxyHeader(version: .v1, command: .proxy, source: endpoint("192.0.2.1", 56324), destination: endpoint("198.51.100.7", 443))
        #expect(ProxyProtocolParser.parse((line + "GET /").utf8) == .parsed(expectedV1, consumed: line.utf8.count))

        let header = v2Header(family: 0x11, payload: inetBlock + tlv(0x04, [0, 0]))
        let slice = ([0xAA, 0xBB] + header + applicationData).dropFirst(2)
        let expectedV2 = ProxyHeader(version: .v2, command: .proxy, source: endpoint("192.0.2.1", 56324), destination: endpoint("198.51.100.7", 443))
        #expect(slice.startIndex == 2)
        #expect(ProxyProtocolParser.parse(slice) == .parsed(expectedV2, consumed: header.count))
    }

    @Test("an error message quotes what was received and names what was expected")
    func errorMessages() {
        guard case .invalid(let notProxy) = ProxyProtocolParser.parse(Array("GET / HTTP/1.1\r\n".utf8)) else {
            Issue.record("an HTTP request was not refused")
            return
        }
        #expect(notProxy.detail.contains(#""GET / HTTP/1.1\r\n""#))
        #expect(notProxy.description.contains("not PROXY protocol"))

        guard case .invalid(let badPort) = ProxyProtocolParser.parse(Array("PROXY TCP4 192.0.2.1 198.51.100.7 56324 0443\r\n".utf8)) else {
            Issue.record("a port with a leading zero was not refused")
            return
        }
        #expect(badPort.detail.contains("destination port \"0443\""))

        guard case .invalid(let badVersion) = ProxyProtocolParser.parse(v2Signature + [0x11]) else {
            Issue.record("v2 version 1 was not refused")
            return
        }
        #expect(badVersion.detail.contains("0x11"))
    }

    @Test("an endpoint prints as address:port, IPv6 in brackets")
    func endpointDescription() {
        #expect(endpoint("192.0.2.1", 443).description == "192.0.2.1:443")
        #expect(endpoint("2001:db8::1", 8443).description == "[2001:db8::1]:8443")
    }
}

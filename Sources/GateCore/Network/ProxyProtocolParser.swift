/// Reads the PROXY protocol header (v1 text or v2 binary, HAProxy's `proxy-protocol.txt`) that a
/// trusted proxy sends before the client's first byte.
///
/// Stateless and incremental: the edge calls `parse` with every byte the connection has received
/// so far and gets `.needMoreData` while those bytes are still a valid start of a header,
/// `.parsed` once the header is complete (its length in bytes, so the edge can hand the rest to
/// the application), or `.invalid` as soon as a byte rules a valid header out. Detection is byte
/// by byte, so a one-byte read is never refused for being short, and a peer that sends something
/// else (`GET / …`, a TLS ClientHello) is refused with `notProxyProtocol` on its first byte: a
/// connection from a trusted proxy without a header must be dropped, not served as the proxy's
/// own address.
///
/// v1 is `PROXY TCP4|TCP6 <source> <destination> <source port> <destination port>\r\n` or
/// `PROXY UNKNOWN…\r\n`, at most 107 bytes with the CRLF. Fields are separated by exactly one
/// space; addresses must be text of the announced family (IPv4 for `TCP4`, IPv6 for `TCP6`; an
/// IPv4-mapped IPv6 address after `TCP6` is accepted and unmapped, as `IPAddress` does); ports
/// are decimal 0-65535 without sign or leading zero. Anything after `UNKNOWN` up to the CRLF is
/// ignored, as the specification and HAProxy do.
///
/// v2 is the 12-byte signature, a version/command byte, a family/transport byte, a big-endian
/// payload length and the payload: the address block of the family (INET 12 bytes, INET6 36,
/// UNIX 216) followed by TLVs. The parser checks each fixed byte as soon as it arrives, so a bad
/// version, command, family or length is refused before the payload is waited for.
/// - `LOCAL` (the proxy's own health check): the family byte and the payload are ignored, as the
///   specification requires; the header carries no addresses.
/// - `PROXY` accepts TCP over INET or INET6 (addresses reported), UNIX streams and the UNSPEC
///   family (no addresses: use the connection's own). Datagram transports are refused (the
///   gateway relays HTTP over streams), and so is every combination the specification leaves
///   undefined (UNSPEC family with a transport, a real family with UNSPEC transport). The
///   UNSPEC payload is opaque and skipped unread; for the other families the TLVs after the
///   address block are skipped but must be well formed.
/// - The payload may announce up to 65535 bytes; more than `maximumV2PayloadLength` is refused
///   so a peer cannot make the gateway buffer 64 KiB per connection before the first request.
///   Real headers (addresses plus a few TLVs: ALPN, authority, a cloud endpoint id, TLS facts)
///   stay far below it.
public enum ProxyProtocolParser {
    /// The answer for the bytes received so far.
    public enum Outcome: Sendable, Hashable {
        /// Every byte so far is a valid start of a header: call again when more arrive.
        case needMoreData
        /// A complete header took the first `consumed` bytes; the rest belongs to the application.
        case parsed(ProxyHeader, consumed: Int)
        /// Not an acceptable header: drop the connection.
        case invalid(ProxyProtocolError)
    }

    /// The longest v1 line the specification allows, CRLF included.
    public static let maximumV1LineLength = 107
    /// The longest v2 payload (address block and TLVs, after the 16 fixed bytes) accepted.
    public static let maximumV2PayloadLength = 4096

    /// Parses the header at the start of `bytes`, the first bytes a connection received.
    public static func parse(_ bytes: some Collection<UInt8>) -> Outcome {
        do throws(ProxyProtocolError) {
            return try Self.parseHeader(bytes)
        } catch {
            return .invalid(error)
        }
    }

    // MARK: Detection

    private static let v1Signature: [UInt8] = Array("PROXY ".utf8)
    private static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// How far the received bytes agree with a signature.
    private enum SignatureMatch {
        /// All of the signature has arrived.
        case complete
        /// Every byte so far agrees, but the signature has not fully arrived.
        case partial
        /// A byte differs: this cannot become the signature.
        case mismatch
    }

    private static func parseHeader(_ bytes: some Collection<UInt8>) throws(ProxyProtocolError) -> Outcome {
        let v1 = Self.match(bytes, against: Self.v1Signature)
        let v2 = Self.match(bytes, against: Self.v2Signature)
        if v1 == .complete {
            return try Self.parseV1(Array(bytes.prefix(Self.maximumV1LineLength)))
        }
        if v2 == .complete {
            return try Self.parseV2(bytes)
        }
        if v1 == .partial || v2 == .partial {
            return .needMoreData
        }
        throw ProxyProtocolError(
            code: .notProxyProtocol,
            detail: "the connection began with \"\(Self.printable(bytes.prefix(24)))\" instead of \"PROXY \" (v1) or the v2 signature; "
                + "a peer listed as a trusted proxy must send a PROXY protocol header (HAProxy: send-proxy or send-proxy-v2 on the server line), "
                + "or be removed from the trusted proxies"
        )
    }

    private static func match(_ bytes: some Collection<UInt8>, against signature: [UInt8]) -> SignatureMatch {
        var matched = 0
        for (byte, expected) in zip(bytes, signature) {
            guard byte == expected else {
                return .mismatch
            }
            matched += 1
        }
        return matched == signature.count ? .complete : .partial
    }

    // MARK: Version 1

    private static let carriageReturn = UInt8(ascii: "\r")
    private static let lineFeed = UInt8(ascii: "\n")
    private static let space = UInt8(ascii: " ")
    private static let colon = UInt8(ascii: ":")

    /// `head` starts with `PROXY ` and holds at most `maximumV1LineLength` bytes.
    private static func parseV1(_ head: [UInt8]) throws(ProxyProtocolError) -> Outcome {
        guard let lineFeedIndex = head.firstIndex(of: Self.lineFeed) else {
            if head.count >= Self.maximumV1LineLength {
                throw ProxyProtocolError(
                    code: .lineTooLong,
                    detail: "no CRLF within the first \(Self.maximumV1LineLength) bytes of the v1 line \"\(Self.printable(head.prefix(40)))…\"; "
                        + "a v1 header is at most \(Self.maximumV1LineLength) bytes including CRLF"
                )
            }
            return .needMoreData
        }
        guard head[lineFeedIndex - 1] == Self.carriageReturn else {
            throw ProxyProtocolError(
                code: .badLineEnding,
                detail: "the v1 line \"\(Self.printable(head[...lineFeedIndex]))\" ends in a bare LF; it must end in CRLF"
            )
        }
        let line = head[Self.v1Signature.count..<(lineFeedIndex - 1)]
        let consumed = lineFeedIndex + 1
        if line.starts(with: "UNKNOWN".utf8) {
            return .parsed(ProxyHeader(version: .v1, command: .proxy, source: nil, destination: nil), consumed: consumed)
        }
        let fields = line.split(separator: Self.space, omittingEmptySubsequences: false)
        guard !fields.contains(where: \.isEmpty) else {
            throw ProxyProtocolError(
                code: .malformedLine,
                detail: "in the v1 line \"PROXY \(Self.printable(line))\" fields must be separated by exactly one space, with no space before CRLF"
            )
        }
        let family: IPAddress.Family
        if fields[0].elementsEqual("TCP4".utf8) {
            family = .v4
        } else if fields[0].elementsEqual("TCP6".utf8) {
            family = .v6
        } else {
            throw ProxyProtocolError(
                code: .unknownProtocol,
                detail: "the v1 protocol \"\(Self.printable(fields[0]))\" is not TCP4, TCP6 or UNKNOWN (upper case)"
            )
        }
        guard fields.count == 5 else {
            throw ProxyProtocolError(
                code: .malformedLine,
                detail: "the v1 line \"PROXY \(Self.printable(line))\" has \(fields.count - 1) fields after \(Self.printable(fields[0])); "
                    + "it needs 4: source address, destination address, source port, destination port"
            )
        }
        let source = ProxyEndpoint(
            address: try Self.v1Address(fields[1], family: family, role: "source"),
            port: try Self.v1Port(fields[3], role: "source")
        )
        let destination = ProxyEndpoint(
            address: try Self.v1Address(fields[2], family: family, role: "destination"),
            port: try Self.v1Port(fields[4], role: "destination")
        )
        return .parsed(ProxyHeader(version: .v1, command: .proxy, source: source, destination: destination), consumed: consumed)
    }

    private static func v1Address(_ field: ArraySlice<UInt8>, family: IPAddress.Family, role: String) throws(ProxyProtocolError) -> IPAddress {
        guard let address = IPAddress(String(decoding: field, as: UTF8.self)) else {
            throw ProxyProtocolError(
                code: .invalidAddress,
                detail: "the v1 \(role) address \"\(Self.printable(field))\" is not IPv4 or IPv6 text"
            )
        }
        // The family is read from the text: `::ffff:192.0.2.1` is IPv6 text though it unmaps to IPv4.
        let writtenFamily: IPAddress.Family = field.contains(Self.colon) ? .v6 : .v4
        guard writtenFamily == family else {
            let (protocolName, expected, found) = family == .v4 ? ("TCP4", "IPv4", "IPv6") : ("TCP6", "IPv6", "IPv4")
            throw ProxyProtocolError(
                code: .addressFamilyMismatch,
                detail: "\(protocolName) needs an \(expected) \(role) address, but \"\(Self.printable(field))\" is \(found)"
            )
        }
        return address
    }

    private static func v1Port(_ field: ArraySlice<UInt8>, role: String) throws(ProxyProtocolError) -> UInt16 {
        guard field.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw ProxyProtocolError(
                code: .invalidPort,
                detail: "the v1 \(role) port \"\(Self.printable(field))\" is not a decimal number (digits only, no sign)"
            )
        }
        guard field.count == 1 || field.first != UInt8(ascii: "0") else {
            throw ProxyProtocolError(
                code: .invalidPort,
                detail: "the v1 \(role) port \"\(Self.printable(field))\" has a leading zero"
            )
        }
        var value = 0
        for digit in field {
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
            guard value <= Int(UInt16.max) else {
                throw ProxyProtocolError(
                    code: .invalidPort,
                    detail: "the v1 \(role) port \"\(Self.printable(field))\" is above 65535"
                )
            }
        }
        return UInt16(value)
    }

    // MARK: Version 2

    /// Signature, version/command, family/transport and the two length bytes.
    private static let v2FixedLength = 16

    /// The address family of a v2 `PROXY` header (transport already checked to be STREAM,
    /// or UNSPEC with the UNSPEC family).
    private enum V2AddressFamily {
        /// No addresses: the payload is opaque.
        case unspecified
        /// Two IPv4 addresses and two ports.
        case inet
        /// Two IPv6 addresses and two ports.
        case inet6
        /// Two 108-byte socket paths; no IP address to report.
        case unix

        /// The bytes of the payload the addresses take; TLVs follow.
        var addressBlockLength: Int {
            switch self {
            case .unspecified:
                return 0
            case .inet:
                return 12
            case .inet6:
                return 36
            case .unix:
                return 216
            }
        }
    }

    private static func parseV2(_ bytes: some Collection<UInt8>) throws(ProxyProtocolError) -> Outcome {
        let fixed = Array(bytes.prefix(Self.v2FixedLength))
        guard fixed.count > 12 else {
            return .needMoreData
        }
        let command = try Self.v2Command(fixed[12])
        var family: V2AddressFamily?
        if command == .proxy, fixed.count > 13 {
            family = try Self.v2AddressFamily(fixed[13])
        }
        guard fixed.count == Self.v2FixedLength else {
            return .needMoreData
        }
        let length = Int(fixed[14]) << 8 | Int(fixed[15])
        guard length <= Self.maximumV2PayloadLength else {
            throw ProxyProtocolError(
                code: .headerTooLarge,
                detail: "the v2 header announces \(length) bytes after its 16 fixed bytes; "
                    + "the gateway accepts at most \(Self.maximumV2PayloadLength) (addresses and TLVs)"
            )
        }
        if let family, length < family.addressBlockLength {
            throw ProxyProtocolError(
                code: .truncatedAddressBlock,
                detail: "the v2 header announces \(length) bytes after its 16 fixed bytes, "
                    + "fewer than the \(family.addressBlockLength) its address family needs for the addresses"
            )
        }
        let consumed = Self.v2FixedLength + length
        guard bytes.count >= consumed else {
            return .needMoreData
        }
        guard let family else {
            return .parsed(ProxyHeader(version: .v2, command: .local, source: nil, destination: nil), consumed: consumed)
        }
        let payload = Array(bytes.dropFirst(Self.v2FixedLength).prefix(length))
        let endpoints: (source: ProxyEndpoint, destination: ProxyEndpoint)?
        switch family {
        case .unspecified:
            return .parsed(ProxyHeader(version: .v2, command: .proxy, source: nil, destination: nil), consumed: consumed)
        case .inet:
            endpoints = Self.v2Endpoints(payload, addressLength: 4)
        case .inet6:
            endpoints = Self.v2Endpoints(payload, addressLength: 16)
        case .unix:
            endpoints = nil
        }
        try Self.checkTLVs(payload, from: family.addressBlockLength)
        return .parsed(
            ProxyHeader(version: .v2, command: .proxy, source: endpoints?.source, destination: endpoints?.destination),
            consumed: consumed
        )
    }

    /// The command of a version/command byte; a version other than 2 or a command other than
    /// LOCAL or PROXY throws.
    private static func v2Command(_ byte: UInt8) throws(ProxyProtocolError) -> ProxyHeader.Command {
        guard byte >> 4 == 2 else {
            throw ProxyProtocolError(
                code: .invalidVersion,
                detail: "the v2 version/command byte is \(Self.hex(byte)); its high nibble (version) must be 2"
            )
        }
        switch byte & 0x0F {
        case 0:
            return .local
        case 1:
            return .proxy
        default:
            throw ProxyProtocolError(
                code: .invalidCommand,
                detail: "the v2 version/command byte is \(Self.hex(byte)); its low nibble (command) must be 0 (LOCAL) or 1 (PROXY)"
            )
        }
    }

    /// The family of a `PROXY` header's family/transport byte, refusing what the gateway cannot relay.
    private static func v2AddressFamily(_ byte: UInt8) throws(ProxyProtocolError) -> V2AddressFamily {
        let family: V2AddressFamily
        switch byte >> 4 {
        case 0:
            family = .unspecified
        case 1:
            family = .inet
        case 2:
            family = .inet6
        case 3:
            family = .unix
        default:
            throw ProxyProtocolError(
                code: .unknownAddressFamily,
                detail: "the v2 family/transport byte is \(Self.hex(byte)); its high nibble (address family) must be "
                    + "0 (UNSPEC), 1 (INET), 2 (INET6) or 3 (UNIX)"
            )
        }
        switch byte & 0x0F {
        case 0 where family == .unspecified, 1 where family != .unspecified:
            return family
        case 0, 1:
            throw ProxyProtocolError(
                code: .familyTransportMismatch,
                detail: "the v2 family/transport byte is \(Self.hex(byte)); the UNSPEC family goes with the UNSPEC transport only (0x00), "
                    + "INET, INET6 and UNIX need a transport (0x11, 0x21, 0x31 for streams)"
            )
        case 2:
            throw ProxyProtocolError(
                code: .datagramTransport,
                detail: "the v2 family/transport byte is \(Self.hex(byte)), a datagram (UDP) flow; the gateway relays streams only"
            )
        default:
            throw ProxyProtocolError(
                code: .unknownTransport,
                detail: "the v2 family/transport byte is \(Self.hex(byte)); its low nibble (transport) must be "
                    + "0 (UNSPEC), 1 (STREAM) or 2 (DGRAM)"
            )
        }
    }

    /// Source and destination from an INET or INET6 address block: both addresses, then both ports.
    private static func v2Endpoints(_ payload: [UInt8], addressLength: Int) -> (source: ProxyEndpoint, destination: ProxyEndpoint) {
        let portsStart = 2 * addressLength
        guard
            let sourceAddress = IPAddress(bytes: payload[0..<addressLength]),
            let destinationAddress = IPAddress(bytes: payload[addressLength..<portsStart])
        else {
            preconditionFailure("4 or 16 bytes always make an IPAddress")
        }
        let sourcePort = UInt16(payload[portsStart]) << 8 | UInt16(payload[portsStart + 1])
        let destinationPort = UInt16(payload[portsStart + 2]) << 8 | UInt16(payload[portsStart + 3])
        return (
            ProxyEndpoint(address: sourceAddress, port: sourcePort),
            ProxyEndpoint(address: destinationAddress, port: destinationPort)
        )
    }

    /// Walks the TLVs from `start` to the end of the payload; each must fit whole.
    private static func checkTLVs(_ payload: [UInt8], from start: Int) throws(ProxyProtocolError) {
        var offset = start
        while offset < payload.count {
            let remaining = payload.count - offset
            guard remaining >= 3 else {
                throw ProxyProtocolError(
                    code: .malformedTLV,
                    detail: "the v2 header ends with \(remaining) byte(s) at offset \(Self.v2FixedLength + offset), "
                        + "too few for a TLV (type and 2-byte length)"
                )
            }
            let valueLength = Int(payload[offset + 1]) << 8 | Int(payload[offset + 2])
            guard valueLength <= remaining - 3 else {
                throw ProxyProtocolError(
                    code: .malformedTLV,
                    detail: "the v2 TLV of type \(Self.hex(payload[offset])) at offset \(Self.v2FixedLength + offset) announces "
                        + "\(valueLength) value bytes, but only \(remaining - 3) remain in the header"
                )
            }
            offset += 3 + valueLength
        }
    }

    // MARK: Messages

    /// `0x0B`.
    private static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return byte < 0x10 ? "0x0" + digits : "0x" + digits
    }

    /// Bytes as text for a message: printable ASCII as is, `\r`, `\n`, and `\xNN` for the rest.
    private static func printable(_ bytes: some Collection<UInt8>) -> String {
        var text = ""
        for byte in bytes {
            switch byte {
            case Self.carriageReturn:
                text += "\\r"
            case Self.lineFeed:
                text += "\\n"
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                text += "\\" + String(UnicodeScalar(byte))
            case 0x20...0x7E:
                text.unicodeScalars.append(UnicodeScalar(byte))
            default:
                text += "\\x" + Self.hex(byte).dropFirst(2)
            }
        }
        return text
    }
}

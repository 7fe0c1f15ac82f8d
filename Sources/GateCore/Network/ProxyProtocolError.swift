/// Why the bytes at the start of a connection are not an acceptable PROXY protocol header.
///
/// Compared by `code`, which can grow; `detail` says, for people, which byte or field was wrong
/// and what was expected. Every error means the connection is dropped: a peer that is trusted to
/// send a header and sends a bad one (or none) cannot be believed about the client's address.
public struct ProxyProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem this is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case notProxyProtocol = "not PROXY protocol"
            case lineTooLong = "v1 line too long"
            case badLineEnding = "v1 bad line ending"
            case malformedLine = "v1 malformed line"
            case unknownProtocol = "v1 unknown protocol"
            case invalidAddress = "v1 invalid address"
            case addressFamilyMismatch = "v1 address family mismatch"
            case invalidPort = "v1 invalid port"
            case invalidVersion = "v2 invalid version"
            case invalidCommand = "v2 invalid command"
            case unknownAddressFamily = "v2 unknown address family"
            case unknownTransport = "v2 unknown transport"
            case familyTransportMismatch = "v2 family and transport mismatch"
            case datagramTransport = "v2 datagram transport"
            case headerTooLarge = "v2 header too large"
            case truncatedAddressBlock = "v2 truncated address block"
            case malformedTLV = "v2 malformed TLV"
        }

        private let base: Base
        private init(_ base: Base) {
            self.base = base
        }

        /// The first bytes are neither `PROXY ` (v1) nor the v2 signature: the peer sent no header.
        public static let notProxyProtocol = Code(.notProxyProtocol)
        /// v1: no CRLF within the first 107 bytes, the longest line the protocol allows.
        public static let lineTooLong = Code(.lineTooLong)
        /// v1: the line ends in a bare LF instead of CRLF.
        public static let badLineEnding = Code(.badLineEnding)
        /// v1: fields missing, too many, or not separated by exactly one space.
        public static let malformedLine = Code(.malformedLine)
        /// v1: the protocol field is not `TCP4`, `TCP6` or `UNKNOWN`.
        public static let unknownProtocol = Code(.unknownProtocol)
        /// v1: an address field is not IPv4 or IPv6 text.
        public static let invalidAddress = Code(.invalidAddress)
        /// v1: an address is of the other family than the protocol field says (IPv6 after `TCP4`).
        public static let addressFamilyMismatch = Code(.addressFamilyMismatch)
        /// v1: a port is not a decimal 0-65535 without sign or leading zero.
        public static let invalidPort = Code(.invalidPort)
        /// v2: the version nibble is not 2.
        public static let invalidVersion = Code(.invalidVersion)
        /// v2: the command nibble is neither 0 (LOCAL) nor 1 (PROXY).
        public static let invalidCommand = Code(.invalidCommand)
        /// v2: the address family nibble is not 0 (UNSPEC), 1 (INET), 2 (INET6) or 3 (UNIX).
        public static let unknownAddressFamily = Code(.unknownAddressFamily)
        /// v2: the transport nibble is not 0 (UNSPEC), 1 (STREAM) or 2 (DGRAM).
        public static let unknownTransport = Code(.unknownTransport)
        /// v2: a combination the protocol does not define (UNSPEC family with a transport, or a
        /// real family with UNSPEC transport).
        public static let familyTransportMismatch = Code(.familyTransportMismatch)
        /// v2: a PROXY command for a datagram (UDP) flow; the gateway only relays streams.
        public static let datagramTransport = Code(.datagramTransport)
        /// v2: the announced length is above `ProxyProtocolParser.maximumV2PayloadLength`.
        public static let headerTooLarge = Code(.headerTooLarge)
        /// v2: the announced length is shorter than the family's address block.
        public static let truncatedAddressBlock = Code(.truncatedAddressBlock)
        /// v2: a TLV after the addresses runs past the end of the header.
        public static let malformedTLV = Code(.malformedTLV)

        public var description: String {
            self.base.rawValue
        }
    }

    /// What kind of problem this is.
    public let code: Code
    /// Which byte or field was wrong and what was expected, for people.
    public let detail: String

    /// Creates an error.
    public init(code: Code, detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String {
        "PROXY protocol header refused (\(self.code)): \(self.detail)"
    }
}

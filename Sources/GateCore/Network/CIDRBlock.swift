/// A network written in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`): a network address and the
/// number of leading bits that every member shares with it.
///
/// Parsing is strict because a trusted-proxy list is security configuration: a bare address
/// means a single host (`/32` or `/128`); the prefix length must be plain decimal digits (no
/// sign, no leading zero, no spaces) within the family's range; and the address must have no
/// bits set below the prefix. `10.0.0.1/8` is refused rather than silently read as
/// `10.0.0.0/8`, since whoever wrote it may have meant the single host `10.0.0.1/32`.
///
/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) becomes the IPv4 block it covers
/// (`10.0.0.0/8`), because `IPAddress` unmaps such addresses and the block must still match them.
/// An IPv4 block never contains an IPv6 address, nor the other way round.
public struct CIDRBlock: Sendable, Hashable, CustomStringConvertible {
    /// Why a CIDR block did not parse; its codes are `notAnAddress`, `invalidPrefixLength`,
    /// `prefixLengthOutOfRange` and `hostBitsSet`.
    public typealias ParseError = ValueParseError

    /// The network address: the block's first address, with every bit below the prefix clear.
    public let network: IPAddress
    /// How many leading bits of an address must equal the network's: 0...32 for IPv4, 0...128
    /// for IPv6.
    public let prefixLength: Int

    /// The family of the addresses in the block.
    public var family: IPAddress.Family {
        self.network.family
    }

    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address meaning that single host.
    ///
    /// No spaces are trimmed and no brackets or zone ids are accepted: trim the entry before
    /// handing it in.
    public init(_ text: some StringProtocol) throws(ParseError) {
        let text = Substring(text)
        let slash = text.utf8.firstIndex(of: UInt8(ascii: "/"))
        let addressText = slash.map { text[..<$0] } ?? text
        guard let address = IPAddress(addressText) else {
            throw ParseError(
                code: .notAnAddress,
                expected: Self.expected,
                text: String(text),
                problem: addressText.isEmpty ? "the address is missing" : "'\(addressText)' is not an IPv4 or IPv6 address",
                hint: "write e.g. 10.0.0.0/8, 2001:db8::/32 or a bare address for one host, without brackets, zone or spaces"
            )
        }
        let width = address.family == .v4 ? 32 : 128
        // Written as IPv6 text but unmapped to IPv4 by `IPAddress`: its prefix counts 96 bits more.
        let writtenAsMapped = address.family == .v4 && addressText.utf8.contains(UInt8(ascii: ":"))
        let writtenWidth = writtenAsMapped ? 128 : width
        var prefixLength = writtenWidth
        if let slash {
            let prefixText = text[text.utf8.index(after: slash)...]
            prefixLength = try Self.parsePrefixLength(prefixText, of: text, width: writtenWidth, mapped: writtenAsMapped)
        }
        if writtenAsMapped {
            prefixLength -= 96
        }
        let mask = Self.mask(prefixLength: prefixLength, family: address.family)
        let value = address.integerValue
        guard value & mask == value else {
            let network = CIDRBlock(uncheckedNetwork: IPAddress(integerValue: value & mask, family: address.family), prefixLength: prefixLength)
            throw ParseError(
                code: .hostBitsSet,
                expected: Self.expected,
                text: String(text),
                problem: "\(address) has bits set below the /\(prefixLength) prefix, so it is a host, not a network",
                hint: "write \(network) for the network, or \(address)/\(width) for this address alone"
            )
        }
        self.init(uncheckedNetwork: address, prefixLength: prefixLength)
    }

    /// What a `ParseError` says the text should have been.
    private static let expected = "a CIDR block"

    private init(uncheckedNetwork network: IPAddress, prefixLength: Int) {
        self.network = network
        self.prefixLength = prefixLength
    }

    /// Whether `address` is in the block: same family, and its first `prefixLength` bits equal
    /// the network's.
    public func contains(_ address: IPAddress) -> Bool {
        guard address.family == self.family else {
            return false
        }
        return address.integerValue & Self.mask(prefixLength: self.prefixLength, family: self.family) == self.network.integerValue
    }

    /// Canonical text: the canonical network address, `/`, the prefix length (always written).
    public var description: String {
        "\(self.network)/\(self.prefixLength)"
    }

    /// The mask with the top `prefixLength` bits of a `family` address set, as an integer the
    /// width of `IPAddress.integerValue` (IPv4 in the low 32 bits).
    static func mask(prefixLength: Int, family: IPAddress.Family) -> UInt128 {
        let width = family == .v4 ? 32 : 128
        let all: UInt128 = family == .v4 ? 0xFFFF_FFFF : ~0
        // Smart shifts: shifting by the full width gives 0, which is the mask of /0.
        return (~UInt128(0) << (width - prefixLength)) & all
    }

    private static func parsePrefixLength(_ digits: Substring, of text: Substring, width: Int, mapped: Bool) throws(ParseError) -> Int {
        let range = mapped ? "96...128 for an IPv4-mapped IPv6 address" : "0...\(width)"
        let hint = "write the number of network bits after '/' as plain digits, \(range)"
        guard !digits.isEmpty else {
            throw ParseError(code: .invalidPrefixLength, expected: Self.expected, text: String(text), problem: "nothing follows '/'", hint: hint)
        }
        guard digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw ParseError(code: .invalidPrefixLength, expected: Self.expected, text: String(text), problem: "the prefix length '\(digits)' is not a whole number", hint: hint)
        }
        guard digits.utf8.count == 1 || digits.utf8.first != UInt8(ascii: "0") else {
            throw ParseError(code: .invalidPrefixLength, expected: Self.expected, text: String(text), problem: "the prefix length '\(digits)' has a leading zero", hint: hint)
        }
        // At most 3 digits can be in range; more would only risk overflow.
        guard digits.utf8.count <= 3, let value = Int(digits), value <= width, !mapped || value >= 96 else {
            let family = mapped ? "an IPv4-mapped IPv6" : (width == 32 ? "an IPv4" : "an IPv6")
            throw ParseError(code: .prefixLengthOutOfRange, expected: Self.expected, text: String(text), problem: "prefix length \(digits) is out of range for \(family) address", hint: hint)
        }
        return value
    }
}

extension IPAddress {
    /// The address as an unsigned integer, first byte most significant; IPv4 fills the low 32 bits.
    var integerValue: UInt128 {
        var value: UInt128 = 0
        for byte in self.bytes {
            value = value << 8 | UInt128(byte)
        }
        return value
    }

    /// The address of `family` whose `integerValue` is `value` (bits above the family's width ignored).
    init(integerValue value: UInt128, family: Family) {
        let count = family == .v4 ? 4 : 16
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * (count - 1 - $0))) }
        // 4 or 16 bytes always make an address.
        self = IPAddress(bytes: bytes)!
    }
}

extension ValueParseError.Code {
    /// CIDR block: the part before `/` (or the whole text) is not an IPv4 or IPv6 address.
    public static let notAnAddress = Self("not_an_address")
    /// CIDR block: the part after `/` is not a plain decimal number (empty, a sign, a leading
    /// zero, a space, a second `/`, or anything but digits).
    public static let invalidPrefixLength = Self("invalid_prefix_length")
    /// CIDR block: the prefix length is longer than the address (33 and more for IPv4, 129 and
    /// more for IPv6, or below 96 for an IPv4-mapped IPv6 network).
    public static let prefixLengthOutOfRange = Self("prefix_length_out_of_range")
    /// CIDR block: the address has bits set below the prefix length: it is a host, not the
    /// network.
    public static let hostBitsSet = Self("host_bits_set")
}

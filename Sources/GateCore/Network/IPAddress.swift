/// An IPv4 or IPv6 address as a value: parsed from text, built from network-order bytes,
/// compared and hashed by its bytes.
///
/// The client identity of every decision (per-IP windows, bans, trusted proxies) is one of
/// these; IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are unmapped to IPv4 when parsed so the
/// same client never counts as two.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// Which family the address belongs to.
    public enum Family: Sendable, Hashable {
        case v4
        case v6
    }

    /// The address in network byte order: 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    public var family: Family {
        self.bytes.count == 4 ? .v4 : .v6
    }

    /// An address from its network-order bytes (4 or 16); `nil` for any other length.
    /// IPv4-mapped IPv6 bytes become the IPv4 address.
    public init?(bytes: some Collection<UInt8>) {
        let array = Array(bytes)
        switch array.count {
        case 4:
            self.bytes = array
        case 16:
            if array[0..<10].allSatisfy({ $0 == 0 }) && array[10] == 0xFF && array[11] == 0xFF {
                self.bytes = Array(array[12..<16])
            } else {
                self.bytes = array
            }
        default:
            return nil
        }
    }

    /// Parses dotted-quad IPv4 (`203.0.113.7`) or RFC 4291 IPv6 text (`2001:db8::1`,
    /// `::ffff:192.0.2.1`); `nil` for anything else (no zone ids, no brackets, no ports).
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        if let v4 = Self.parseIPv4(utf8[...]) {
            self.bytes = v4
        } else if let v6 = Self.parseIPv6(utf8), let address = IPAddress(bytes: v6) {
            self = address
        } else {
            return nil
        }
    }

    public var description: String {
        switch self.family {
        case .v4:
            return self.bytes.map(String.init).joined(separator: ".")
        case .v6:
            return Self.formatIPv6(self.bytes)
        }
    }

    private static func parseIPv4(_ utf8: ArraySlice<UInt8>) -> [UInt8]? {
        var result: [UInt8] = []
        result.reserveCapacity(4)
        var value = 0
        var digits = 0
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                // No leading zeros ("010" is octal to some parsers): refuse the ambiguity.
                if digits == 1 && value == 0 {
                    return nil
                }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
                if value > 255 {
                    return nil
                }
            case UInt8(ascii: "."):
                guard digits > 0, result.count < 3 else {
                    return nil
                }
                result.append(UInt8(value))
                value = 0
                digits = 0
            default:
                return nil
            }
        }
        guard digits > 0, result.count == 3 else {
            return nil
        }
        result.append(UInt8(value))
        return result
    }

    private static func parseIPv6(_ text: [UInt8]) -> [UInt8]? {
        guard text.count >= 2, text.count <= 45 else {
            return nil
        }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        var index = 0
        if text.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            sawGap = true
            index = 2
        } else if text[0] == UInt8(ascii: ":") {
            return nil
        }
        var trailingV4: [UInt8]?
        while index < text.count {
            // One group: up to 4 hex digits, or a final dotted IPv4.
            var end = index
            while end < text.count && text[end] != UInt8(ascii: ":") {
                end += 1
            }
            let group = text[index..<end]
            if group.contains(UInt8(ascii: ".")) {
                guard end == text.count, let v4 = Self.parseIPv4(group) else {
                    return nil
                }
                trailingV4 = v4
            } else {
                guard !group.isEmpty, group.count <= 4, let value = UInt16(String(decoding: group, as: UTF8.self), radix: 16) else {
                    return nil
                }
                if sawGap {
                    tail.append(value)
                } else {
                    head.append(value)
                }
            }
            index = end
            if index < text.count {
                // At a ':'; "::" marks the gap (once), a trailing single ':' is invalid.
                if index + 1 < text.count && text[index + 1] == UInt8(ascii: ":") {
                    guard !sawGap else {
                        return nil
                    }
                    sawGap = true
                    index += 2
                } else {
                    index += 1
                    guard index < text.count else {
                        return nil
                    }
                }
            }
        }
        let groupsFromV4 = trailingV4 == nil ? 0 : 2
        let written = head.count + tail.count + groupsFromV4
        if sawGap {
            guard written <= 7 else {
                return nil
            }
        } else {
            guard written == 8 else {
                return nil
            }
        }
        var groups = head + Array(repeating: 0, count: 8 - written) + tail
        if let v4 = trailingV4 {
            groups.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
            groups.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
        }
        return groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// RFC 5952 text: lowercase, leading zeros dropped, the longest run (≥ 2) of zero groups as `::`.
    private static func formatIPv6(_ bytes: [UInt8]) -> String {
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        var bestStart = -1
        var bestLength = 0
        var runStart = -1
        for (index, group) in groups.enumerated() {
            if group == 0 {
                if runStart < 0 {
                    runStart = index
                }
                let length = index - runStart + 1
                if length > bestLength {
                    bestStart = runStart
                    bestLength = length
                }
            } else {
                runStart = -1
            }
        }
        if bestLength < 2 {
            return groups.map { String($0, radix: 16) }.joined(separator: ":")
        }
        let before = groups[..<bestStart].map { String($0, radix: 16) }.joined(separator: ":")
        let after = groups[(bestStart + bestLength)...].map { String($0, radix: 16) }.joined(separator: ":")
        return before + "::" + after
    }
}

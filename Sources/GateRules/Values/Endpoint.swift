import GateCore

/// A host and a port: where a listener binds or where a backend is dialled.
///
/// Written `host:port`, with an IPv6 address in brackets (`[::1]:8080`). The host is an IPv4
/// or IPv6 literal, kept in canonical form (`[0:0::1]:80` reads as `[::1]:80`, so the same
/// backend written twice is seen as a duplicate), or a host name, kept in lower case. The port
/// is 0...65535; whoever reads an endpoint decides whether 0 ("any free port") makes sense.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// Why an endpoint did not parse; its codes are `invalidHost`, `missingPort` and
    /// `invalidPort`.
    public typealias ParseError = ValueParseError

    /// What a `ParseError` says the text should have been.
    private static let expected = "an address"

    /// An IP literal without brackets, or a host name.
    public var host: String
    /// The TCP port, 0...65535.
    public var port: Int

    /// An endpoint from its parts, taken as they are.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `[ipv6]:port`.
    public static func parse(_ text: String) throws(ParseError) -> Endpoint {
        let hostText: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw ParseError(code: .invalidHost, expected: Self.expected, text: text, problem: "'[' is not closed", hint: "write an IPv6 address as [::1]:8080")
            }
            hostText = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw ParseError(code: .missingPort, expected: Self.expected, text: text, problem: "no port after the address", hint: "write [\(hostText)]:PORT")
            }
            portText = rest.dropFirst()
            guard let address = IPAddress(hostText), hostText.contains(":") else {
                throw ParseError(code: .invalidHost, expected: Self.expected, text: text, problem: "'\(hostText)' is not an IPv6 address", hint: "brackets hold an IPv6 address only, e.g. [::1]:8080")
            }
            return Endpoint(host: address.description, port: try Self.parsePort(portText, of: text))
        }
        guard let colon = text.lastIndex(of: ":") else {
            throw ParseError(code: .missingPort, expected: Self.expected, text: text, problem: "no port", hint: "write host:port, e.g. 127.0.0.1:8081")
        }
        hostText = text[..<colon]
        portText = text[text.index(after: colon)...]
        guard !hostText.contains("://") else {
            throw ParseError(code: .invalidHost, expected: Self.expected, text: text, problem: "a URL is not an address", hint: "write host:port without a scheme, e.g. 127.0.0.1:8081")
        }
        guard !hostText.contains(":") else {
            throw ParseError(code: .invalidHost, expected: Self.expected, text: text, problem: "an IPv6 address needs brackets", hint: "write e.g. [::1]:8080")
        }
        let port = try Self.parsePort(portText, of: text)
        if let address = IPAddress(hostText) {
            return Endpoint(host: address.description, port: port)
        }
        guard Self.isHostName(hostText) else {
            throw ParseError(
                code: .invalidHost,
                expected: Self.expected,
                text: text,
                problem: hostText.isEmpty ? "the host is missing" : "'\(hostText)' is neither an IP address nor a host name",
                hint: "write an IPv4 address, [IPv6] or a host name of letters, digits, '-' and '.', e.g. 0.0.0.0:8080"
            )
        }
        return Endpoint(host: hostText.lowercased(), port: port)
    }

    /// `host:port`, or `[host]:port` for an IPv6 address.
    public var description: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    private static func parsePort(_ digits: Substring, of text: String) throws(ParseError) -> Int {
        guard !digits.isEmpty else {
            throw ParseError(code: .missingPort, expected: Self.expected, text: text, problem: "nothing follows ':'", hint: "write the port after ':', e.g. :8080")
        }
        guard digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            digits.count <= 5, digits.count == 1 || !digits.hasPrefix("0"),
            let port = Int(digits), port <= 65535
        else {
            throw ParseError(code: .invalidPort, expected: Self.expected, text: text, problem: "port '\(digits)' is not a number in 0...65535", hint: "write the port as plain digits, e.g. :8080")
        }
        return port
    }

    /// RFC 1123 host names: dot-separated labels of letters, digits and inner '-', each 1 to
    /// 63 characters, 253 in all; the last label not all digits (that is a broken IPv4 address).
    private static func isHostName(_ text: Substring) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else {
            return false
        }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        let labelsAreValid = labels.allSatisfy { label in
            label.utf8.count >= 1 && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.unicodeScalars.allSatisfy { $0.isASCIILetterOrDigit || $0 == "-" }
        }
        let lastIsNumeric = labels.last?.allSatisfy { $0.isASCII && $0.isNumber } ?? false
        return labelsAreValid && !lastIsNumeric
    }
}

extension ValueParseError.Code {
    /// Address: the host is neither an IP address nor a host name (or an IPv6 address lacks its
    /// brackets).
    public static let invalidHost = Self("invalid_host")
    /// Address: no `:port` follows the host.
    public static let missingPort = Self("missing_port")
    /// Address: the port is not a plain decimal number in 0...65535.
    public static let invalidPort = Self("invalid_port")
}

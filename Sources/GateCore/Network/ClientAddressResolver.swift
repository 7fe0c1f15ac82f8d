/// Decides who the client of a request is, from the TCP peer and the `X-Forwarded-For` headers.
///
/// The rule, chosen so a client can never pick its own identity:
/// - If the peer is not a trusted proxy, the client is the peer and `X-Forwarded-For` is ignored
///   entirely (anyone can send the header).
/// - If the peer is trusted, the entries of every `X-Forwarded-For` header, merged in order as if
///   comma-joined (RFC 7230 §3.2.2), are walked from the right, the hop nearest the gateway.
///   Trusted entries are skipped; the first untrusted entry is the client. When every entry is
///   trusted, the client is the leftmost one.
/// - An entry that is not an address (garbage, `unknown`, an obfuscated name, the empty entry of
///   `a,,b` or of an empty header) stops the walk: the client is the last address accepted, the
///   nearest trusted hop to its right, or the peer if there is none. Garbage never becomes the
///   identity. (RFC 7230 lets a recipient skip empty list elements; a proxy we trust never
///   writes one, so here it marks a broken chain instead.)
/// - At most `maximumEntries` entries are examined, counted from the right; a longer trusted
///   chain stops where the cap is reached, as at a bad entry. The cap bounds the address parsing
///   and set lookups a huge header can cause; the only work done on the rest of the header is
///   one pass over its bytes to count the commas, so that indices count from the left.
///
/// Entries are trimmed of spaces and tabs and may be IPv4 (`192.0.2.1`), IPv4 with a port
/// (`192.0.2.1:4711`), IPv6 (`2001:db8::1`), or bracketed IPv6 with or without a port
/// (`[2001:db8::1]`, `[2001:db8::1]:4711`); the port is dropped.
public struct ClientAddressResolver: Sendable {
    /// Who the client is, and where the gateway learned it; logged with the request.
    public struct Resolution: Sendable, Hashable, CustomStringConvertible {
        /// Where the address came from.
        public enum Source: Sendable, Hashable {
            /// The TCP peer of the connection.
            case peer
            /// The `X-Forwarded-For` entry at `index` of the merged list, counting from 0 at the
            /// leftmost entry of the first header.
            case forwardedFor(index: Int)
        }

        /// Why a walk through a trusted chain ended before it found an untrusted entry or
        /// reached the leftmost entry; worth a (throttled) log line, since a proxy we trust
        /// passed it on.
        public enum Anomaly: Sendable, Hashable {
            /// The entry at `index` (counting from the left) is not an address.
            case malformedEntry(index: Int)
            /// `maximumEntries` entries were examined, all trusted, and more are left of them.
            case entryCapReached
        }

        /// The client's address.
        public let address: IPAddress
        /// Where `address` came from.
        public let source: Source
        /// Why the walk stopped early, if it did.
        public let anomaly: Anomaly?

        public init(address: IPAddress, source: Source, anomaly: Anomaly? = nil) {
            self.address = address
            self.source = source
            self.anomaly = anomaly
        }

        public var description: String {
            var text: String
            switch self.source {
            case .peer:
                text = "\(self.address) (peer)"
            case .forwardedFor(let index):
                text = "\(self.address) (x-forwarded-for[\(index)])"
            }
            switch self.anomaly {
            case .none:
                break
            case .malformedEntry(let index):
                text += ", x-forwarded-for[\(index)] is not an address"
            case .entryCapReached:
                text += ", x-forwarded-for entry cap reached"
            }
            return text
        }
    }

    /// The default for `maximumEntries`: far more hops than any real chain of proxies has.
    public static let defaultMaximumEntries = 32

    /// The proxies whose `X-Forwarded-For` entries are believed.
    public let trustedProxies: TrustedProxies
    /// The most `X-Forwarded-For` entries examined per request, counted from the right (at least 1).
    public let maximumEntries: Int

    /// Creates a resolver; a `maximumEntries` below 1 is raised to 1.
    public init(trustedProxies: TrustedProxies, maximumEntries: Int = Self.defaultMaximumEntries) {
        self.trustedProxies = trustedProxies
        self.maximumEntries = max(1, maximumEntries)
    }

    /// Resolves the client of a request whose connection comes from `peer` and whose
    /// `X-Forwarded-For` headers have `forwardedFor` as values, in the order they arrived.
    public func resolve(peer: IPAddress, forwardedFor headerValues: some BidirectionalCollection<some StringProtocol>) -> Resolution {
        var accepted = Resolution(address: peer, source: .peer)
        guard self.trustedProxies.contains(peer) else {
            return accepted
        }
        let comma = UInt8(ascii: ",")
        var index = headerValues.reduce(0) { count, value in
            count + 1 + value.utf8.reduce(0) { $1 == comma ? $0 + 1 : $0 }
        }
        var examined = 0
        for value in headerValues.reversed() {
            let value = Substring(value)
            var end = value.endIndex
            while true {
                let separator = value.utf8[..<end].lastIndex(of: comma)
                let start = separator.map { value.utf8.index(after: $0) } ?? value.startIndex
                index -= 1
                guard examined < self.maximumEntries else {
                    return Resolution(address: accepted.address, source: accepted.source, anomaly: .entryCapReached)
                }
                examined += 1
                guard let address = Self.address(inEntry: value[start..<end]) else {
                    return Resolution(address: accepted.address, source: accepted.source, anomaly: .malformedEntry(index: index))
                }
                accepted = Resolution(address: address, source: .forwardedFor(index: index))
                guard self.trustedProxies.contains(address) else {
                    return accepted
                }
                guard let separator else {
                    break
                }
                end = separator
            }
        }
        return accepted
    }

    /// The address in one `X-Forwarded-For` entry, `nil` unless the whole entry is one.
    static func address(inEntry entry: Substring) -> IPAddress? {
        let entry = entry.trimmingSpaces()
        let colon = UInt8(ascii: ":")
        if entry.utf8.first == UInt8(ascii: "[") {
            // "[v6]" or "[v6]:port"; brackets are for IPv6 text only.
            guard let close = entry.utf8.firstIndex(of: UInt8(ascii: "]")) else {
                return nil
            }
            let inner = entry[entry.utf8.index(after: entry.startIndex)..<close]
            let rest = entry[entry.utf8.index(after: close)...]
            guard inner.utf8.contains(colon), rest.isEmpty || Self.isColonAndPort(rest) else {
                return nil
            }
            return IPAddress(inner)
        }
        // Exactly one ':' can only be "v4:port"; IPv6 text has at least two.
        if let first = entry.utf8.firstIndex(of: colon), entry.utf8.lastIndex(of: colon) == first {
            guard Self.isColonAndPort(entry[first...]), let address = IPAddress(entry[..<first]), address.family == .v4 else {
                return nil
            }
            return address
        }
        return IPAddress(entry)
    }

    /// Whether `text` is ':' and a port number (1 to 5 digits, at most 65535).
    private static func isColonAndPort(_ text: Substring) -> Bool {
        let digits = text.utf8.dropFirst()
        guard text.utf8.first == UInt8(ascii: ":"), (1...5).contains(digits.count),
              digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else {
            return false
        }
        return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) } <= 65535
    }
}

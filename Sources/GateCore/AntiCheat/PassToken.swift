import Crypto

/// A pass: what a solved challenge earns, presented by the client on its next requests (header
/// `X-SpikeGate-Pass` or cookie `sg_pass`) to skip further challenges until it expires or its
/// budget is spent.
///
/// `v1.KEYID.EXPIRES.PREFIX.ROUTE.NONCE.MAC`: the key id, the expiry (Unix seconds), the client
/// address prefix it is bound to (a /24 for IPv4, a /64 for IPv6, so a phone moving within its
/// network keeps it), the route, a random nonce (the pass's identity for its budget), and an
/// HMAC-SHA256 over everything before it with the named key, compared in constant time. Keys
/// are rotatable: new passes use the current key, passes made with any key still listed verify.
public struct PassToken: Sendable, Hashable {
    public let keyID: String
    public let expires: Int64
    public let prefix: String
    public let route: String
    public let nonce: String

    public init(keyID: String, expires: Int64, prefix: String, route: String, nonce: String) {
        self.keyID = keyID
        self.expires = expires
        self.prefix = prefix
        self.route = route
        self.nonce = nonce
    }

    /// Why a pass was not accepted.
    public enum Refusal: String, Error, Sendable, Hashable {
        case malformed = "malformed pass"
        case unknownKey = "pass signed with an unknown key"
        case badSignature = "pass signature does not match"
        case expired = "pass expired"
        case otherClient = "pass issued to another network"
        case otherRoute = "pass issued for another route"
    }

    /// The keys passes are signed with: `current` signs, every listed key verifies.
    public struct Keyring: Sendable {
        public let current: String
        private let keys: [String: SymmetricKey]

        /// `keys` by id; `current` must be one of them.
        public init(current: String, keys: [String: [UInt8]]) {
            precondition(keys[current] != nil, "the current pass key must be in the keyring")
            self.current = current
            self.keys = keys.mapValues { SymmetricKey(data: $0) }
        }

        /// A keyring with one random key (passes then verify only in this process).
        public static func random(id: String = "k0", using generator: inout some RandomNumberGenerator) -> Keyring {
            Keyring(current: id, keys: [id: (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }])
        }

        func key(_ id: String) -> SymmetricKey? {
            self.keys[id]
        }
    }

    /// The signed text.
    public func encoded(with keyring: Keyring) -> String {
        let body = "v1.\(self.keyID).\(self.expires).\(self.prefix).\(Self.escape(self.route)).\(self.nonce)"
        let key = keyring.key(self.keyID) ?? keyring.key(keyring.current)!
        let mac = HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: key)
        return body + "." + Self.hex(Array(mac))
    }

    /// Parses and checks `text` for a request from `client` on `route` at `now` (Unix seconds).
    public static func verify(_ text: String, keyring: Keyring, client: IPAddress, route: String, now: Int64) -> Result<PassToken, Refusal> {
        guard text.utf8.count <= 512 else {
            return .failure(.malformed)
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 7, parts[0] == "v1", let expires = Int64(parts[2]), let mac = Self.bytes(hex: parts[6]) else {
            return .failure(.malformed)
        }
        guard let key = keyring.key(parts[1]) else {
            return .failure(.unknownKey)
        }
        let body = parts[0..<6].joined(separator: ".")
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Array(body.utf8), using: key) else {
            return .failure(.badSignature)
        }
        let token = PassToken(keyID: parts[1], expires: expires, prefix: parts[3], route: Self.unescape(parts[4]), nonce: parts[5])
        guard expires > now else {
            return .failure(.expired)
        }
        guard token.prefix == Self.prefix(of: client) else {
            return .failure(.otherClient)
        }
        guard token.route == route else {
            return .failure(.otherRoute)
        }
        return .success(token)
    }

    /// The network a pass is bound to: the /24 of an IPv4 address, the /64 of an IPv6 one.
    public static func prefix(of address: IPAddress) -> String {
        let bytes = address.bytes
        let kept = bytes.count == 4 ? 3 : 8
        return bytes.prefix(kept).map { String($0, radix: 16) }.joined(separator: "-") + "/\(kept * 8)"
    }

    private static func escape(_ text: String) -> String {
        // Routes are paths: keep them free of the separator.
        text.replacingDots()
    }

    private static func unescape(_ text: String) -> String {
        text.replacingOccurrencesOfMarker()
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    private static func bytes(hex text: String) -> [UInt8]? {
        guard text.utf8.count == 64 else {
            return nil
        }
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let h = Self.nibble(high), let l = Self.nibble(low) else {
                return nil
            }
            bytes.append(h << 4 | l)
        }
        return bytes
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"):
            return byte - UInt8(ascii: "a") + 10
        default:
            return nil
        }
    }
}

extension String {
    /// `.` → `!`, `!` → `!!`: a route with dots fits between the token's separators.
    fileprivate func replacingDots() -> String {
        var result = ""
        for character in self {
            switch character {
            case "!":
                result += "!!"
            case ".":
                result += "!d"
            default:
                result.append(character)
            }
        }
        return result
    }

    fileprivate func replacingOccurrencesOfMarker() -> String {
        var result = ""
        var escaping = false
        for character in self {
            if escaping {
                result.append(character == "d" ? "." : character)
                escaping = false
            } else if character == "!" {
                escaping = true
            } else {
                result.append(character)
            }
        }
        return result
    }
}

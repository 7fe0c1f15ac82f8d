import Crypto

/// A key account tokens are checked with: an HMAC-SHA256 secret (HS256 JWTs, signed cookies) or
/// a P-256 public key (ES256 JWTs). Several may be listed at once, so keys rotate: a token
/// verifies when any listed key of its kind accepts it.
public struct AccountTokenKey: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case hs256 = "HS256"
        case es256 = "ES256"
    }

    public let kind: Kind
    /// Where the key came from (a file name), for messages.
    public let name: String
    /// The secret, or the public key in X9.63 form.
    private let bytes: [UInt8]

    /// The shortest HMAC secret accepted: 32 bytes, the hash's output size (RFC 7518 §3.2).
    public static let minimumSecretBytes = 32

    /// An HMAC-SHA256 secret (at least `minimumSecretBytes`).
    public static func hmac(secret: [UInt8], name: String) -> AccountTokenKey {
        AccountTokenKey(kind: .hs256, name: name, bytes: secret)
    }

    /// A P-256 public key from its PEM text (`-----BEGIN PUBLIC KEY-----`).
    public static func p256(pem: String, name: String) throws -> AccountTokenKey {
        let key = try P256.Signing.PublicKey(pemRepresentation: pem)
        return AccountTokenKey(kind: .es256, name: name, bytes: Array(key.x963Representation))
    }

    /// Whether `signature` is this key's over `message`.
    func accepts(_ signature: [UInt8], over message: some Collection<UInt8>) -> Bool {
        switch self.kind {
        case .hs256:
            // isValidAuthenticationCode compares in constant time.
            return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: Array(message), using: SymmetricKey(data: self.bytes))
        case .es256:
            guard let key = try? P256.Signing.PublicKey(x963Representation: self.bytes),
                  let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
            else {
                return false
            }
            return key.isValidSignature(ecdsa, for: Array(message))
        }
    }

    /// HMAC-SHA256 of `message` with this secret (HS256 keys only).
    func mac(_ message: some Collection<UInt8>) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(message), using: SymmetricKey(data: self.bytes)))
    }
}

/// Why an account token was refused; the text goes into the 401 answer.
public struct AccountTokenRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    public let reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String {
        self.reason
    }
}

/// The most bytes an account id may have, whatever carries it.
public let maximumAccountIDBytes = 256

/// Checks a JWT (RFC 7519) in compact form and gives its `sub`: the signature with one of the
/// configured keys (HS256 or ES256 only — `none` and every other `alg` are refused), `exp`
/// (required), `nbf`, and `iss`/`aud` when configured, with `leeway` seconds of clock skew.
public struct JWTVerifier: Sendable, Hashable {
    public var keys: [AccountTokenKey]
    public var issuer: String?
    public var audience: String?
    public var leeway: Int64

    /// The longest token looked at.
    public static let maximumBytes = 8192

    public init(keys: [AccountTokenKey], issuer: String? = nil, audience: String? = nil, leeway: Int64 = 30) {
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
    }

    /// The account (`sub`) of `token` at Unix time `now`, or why the token is refused.
    public func subject(of token: String, now: Int64) -> Result<String, AccountTokenRefusal> {
        let bytes = Array(token.utf8)
        guard bytes.count <= Self.maximumBytes else {
            return .failure(AccountTokenRefusal("token longer than \(Self.maximumBytes) bytes"))
        }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            return .failure(AccountTokenRefusal("token is not a JWT (three base64url parts joined by dots)"))
        }
        guard let headerBytes = Base64URL.decode(parts[0]), let claimBytes = Base64URL.decode(parts[1]),
              let signature = Base64URL.decode(parts[2])
        else {
            return .failure(AccountTokenRefusal("token has a part that is not base64url"))
        }
        let header: [String: JSONObjectReader.Value]
        let claims: [String: JSONObjectReader.Value]
        do {
            header = try JSONObjectReader.members(of: headerBytes)
            claims = try JSONObjectReader.members(of: claimBytes)
        } catch {
            return .failure(AccountTokenRefusal("token JSON: \(error)"))
        }
        guard case .string(let algorithm) = header["alg"] else {
            return .failure(AccountTokenRefusal("token header has no alg"))
        }
        guard let kind = AccountTokenKey.Kind(rawValue: algorithm), self.keys.contains(where: { $0.kind == kind }) else {
            return .failure(AccountTokenRefusal("token alg \(algorithm.prefix(16)) not accepted here"))
        }
        let signed = bytes[0..<(parts[0].count + 1 + parts[1].count)]
        guard self.keys.contains(where: { $0.kind == kind && $0.accepts(signature, over: signed) }) else {
            return .failure(AccountTokenRefusal("token signature does not match"))
        }
        guard case .number(let expires) = claims["exp"] else {
            return .failure(AccountTokenRefusal("token has no exp"))
        }
        if Double(now) > expires + Double(self.leeway) {
            return .failure(AccountTokenRefusal("token expired"))
        }
        if let notBefore = claims["nbf"] {
            guard case .number(let start) = notBefore else {
                return .failure(AccountTokenRefusal("token nbf is not a number"))
            }
            if Double(now) + Double(self.leeway) < start {
                return .failure(AccountTokenRefusal("token not valid yet"))
            }
        }
        if let issuer = self.issuer, claims["iss"] != .string(issuer) {
            return .failure(AccountTokenRefusal("token issued by someone else"))
        }
        if let audience = self.audience {
            switch claims["aud"] {
            case .string(let single) where single == audience:
                break
            case .strings(let list) where list.contains(audience):
                break
            default:
                return .failure(AccountTokenRefusal("token meant for another audience"))
            }
        }
        guard case .string(let subject) = claims["sub"], !subject.isEmpty else {
            return .failure(AccountTokenRefusal("token has no sub"))
        }
        guard subject.utf8.count <= maximumAccountIDBytes else {
            return .failure(AccountTokenRefusal("token sub longer than \(maximumAccountIDBytes) bytes"))
        }
        return .success(subject)
    }
}

/// An account carried in a cookie signed by the login service: `ACCOUNT.EXPIRES.MAC`, where
/// ACCOUNT is the account id in base64url, EXPIRES the expiry in Unix seconds, and MAC the
/// base64url HMAC-SHA256 of `ACCOUNT.EXPIRES` with a shared secret (checked in constant time;
/// every listed secret is tried, so secrets rotate).
public struct SignedCookie: Sendable, Hashable {
    public var keys: [AccountTokenKey]

    public init(keys: [AccountTokenKey]) {
        self.keys = keys
    }

    /// A cookie value for `account` until `expires`, signed with `key` (what a login service
    /// sets; `spikegate identity cookie` prints one).
    public static func make(account: String, expires: Int64, key: AccountTokenKey) -> String {
        let message = Base64URL.encode(account.utf8) + "." + String(expires)
        return message + "." + Base64URL.encode(key.mac(message.utf8))
    }

    /// The account `value` carries at Unix time `now`, or why it is refused.
    public func account(of value: String, now: Int64) -> Result<String, AccountTokenRefusal> {
        let bytes = Array(value.utf8)
        guard bytes.count <= 1024 else {
            return .failure(AccountTokenRefusal("account cookie longer than 1024 bytes"))
        }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, let accountBytes = Base64URL.decode(parts[0]), let mac = Base64URL.decode(parts[2]),
              let expires = Int64(String(decoding: parts[1], as: UTF8.self))
        else {
            return .failure(AccountTokenRefusal("account cookie is not ACCOUNT.EXPIRES.MAC"))
        }
        let signed = bytes[0..<(parts[0].count + 1 + parts[1].count)]
        guard self.keys.contains(where: { $0.kind == .hs256 && $0.accepts(mac, over: signed) }) else {
            return .failure(AccountTokenRefusal("account cookie signature does not match"))
        }
        guard now <= expires else {
            return .failure(AccountTokenRefusal("account cookie expired"))
        }
        guard let account = String(validating: accountBytes, as: UTF8.self), !account.isEmpty,
              account.utf8.count <= maximumAccountIDBytes
        else {
            return .failure(AccountTokenRefusal("account cookie holds no usable account id"))
        }
        return .success(account)
    }
}

/// Makes JWTs the way a login service would, for tools, the demo's simulated users and tests.
public enum JWTSigner {
    /// The claims of an account token: `sub`, `exp`, and `iss`/`aud` when given, as JSON.
    public static func claims(subject: String, expires: Int64, issuer: String? = nil, audience: String? = nil) -> String {
        var members = ["\"sub\":\(jsonString(subject))", "\"exp\":\(expires)"]
        if let issuer {
            members.append("\"iss\":\(jsonString(issuer))")
        }
        if let audience {
            members.append("\"aud\":\(jsonString(audience))")
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    /// `claims` (JSON text) signed with HMAC-SHA256 under `secret`.
    public static func hs256(claims: String, secret: [UInt8]) -> String {
        let signed = Self.signingInput(algorithm: "HS256", claims: claims)
        return signed + "." + Base64URL.encode(AccountTokenKey.hmac(secret: secret, name: "").mac(signed.utf8))
    }

    /// `claims` (JSON text) signed with ECDSA P-256/SHA-256 under the PEM private key.
    public static func es256(claims: String, privateKeyPEM: String) throws -> String {
        let key = try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        let signed = Self.signingInput(algorithm: "ES256", claims: claims)
        return signed + "." + Base64URL.encode(try key.signature(for: Array(signed.utf8)).rawRepresentation)
    }

    private static func signingInput(algorithm: String, claims: String) -> String {
        Base64URL.encode("{\"alg\":\"\(algorithm)\",\"typ\":\"JWT\"}".utf8) + "." + Base64URL.encode(claims.utf8)
    }
}

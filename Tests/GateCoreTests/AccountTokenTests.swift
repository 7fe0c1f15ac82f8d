import GateCore
import Testing

/// JWTs (HS256, ES256) and signed cookies: what verifies, and every way a token is refused.
@Suite struct AccountTokenTests {
    static let secret = Array("0123456789abcdef0123456789abcdef-login".utf8)
    static let otherSecret = Array("fedcba9876543210fedcba9876543210-other".utf8)
    /// A P-256 signer (PKCS#8) and its public key; `otherPublic` belongs to another signer.
    static let signerPEM = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNqFoTmySlsRSoFWg
        X4PWtOgtEaQG482cthYO88bfDQahRANCAATXLskD9sTRRQttwGUroFbOa4OM3woD
        fSNA1FQ/6NMpvnzXfVvf3h/Xa0Lts4zLuqmSVPx7I0zYviQBK01PfCEY
        -----END PRIVATE KEY-----
        """
    static let signerPublic = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1y7JA/bE0UULbcBlK6BWzmuDjN8K
        A30jQNRUP+jTKb58131b394f12tC7bOMy7qpklT8eyNM2L4kAStNT3whGA==
        -----END PUBLIC KEY-----
        """
    static let otherPublic = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2kUYaYqWn2qBOSCA/DUCmmNuFyb6
        t2CZA3sT1kBvMjAP0MWl0diQTIQCqVkq0cG9lc42/Cm1KN1xpnfTsWyI6A==
        -----END PUBLIC KEY-----
        """
    static let now: Int64 = 1_800_000_000

    static func hs256Verifier(_ secrets: [[UInt8]] = [secret], issuer: String? = nil, audience: String? = nil) -> JWTVerifier {
        JWTVerifier(keys: secrets.enumerated().map { AccountTokenKey.hmac(secret: $1, name: "k\($0).key") }, issuer: issuer, audience: audience)
    }

    static func token(_ claims: String, secret: [UInt8] = secret) -> String {
        JWTSigner.hs256(claims: claims, secret: secret)
    }

    static func refusal(_ result: Result<String, AccountTokenRefusal>) -> String? {
        if case .failure(let refusal) = result {
            return refusal.reason
        }
        return nil
    }

    @Test func anHS256TokenGivesItsSubject() throws {
        let token = Self.token(JWTSigner.claims(subject: "alice", expires: Self.now + 60))
        #expect(try Self.hs256Verifier().subject(of: token, now: Self.now).get() == "alice")
    }

    @Test func anES256TokenGivesItsSubjectAndOnlyItsOwnKeyVerifiesIt() throws {
        let token = try JWTSigner.es256(claims: JWTSigner.claims(subject: "bob", expires: Self.now + 60), privateKeyPEM: Self.signerPEM)
        let verifier = JWTVerifier(keys: [try .p256(pem: Self.otherPublic, name: "old.pem"), try .p256(pem: Self.signerPublic, name: "new.pem")])
        #expect(try verifier.subject(of: token, now: Self.now).get() == "bob")
        let wrongKey = JWTVerifier(keys: [try .p256(pem: Self.otherPublic, name: "other.pem")])
        #expect(Self.refusal(wrongKey.subject(of: token, now: Self.now)) == "token signature does not match")
    }

    @Test func secretsRotate() throws {
        let old = Self.token(JWTSigner.claims(subject: "carol", expires: Self.now + 60), secret: Self.otherSecret)
        #expect(try Self.hs256Verifier([Self.secret, Self.otherSecret]).subject(of: old, now: Self.now).get() == "carol")
        #expect(Self.refusal(Self.hs256Verifier([Self.secret]).subject(of: old, now: Self.now)) == "token signature does not match")
    }

    @Test func aChangedClaimBreaksTheSignature() {
        let token = Self.token(JWTSigner.claims(subject: "alice", expires: Self.now + 60))
        let parts = token.split(separator: ".")
        let forged = parts[0] + "." + Base64URL.encode(JWTSigner.claims(subject: "mallory", expires: Self.now + 60).utf8) + "." + parts[2]
        #expect(Self.refusal(Self.hs256Verifier().subject(of: String(forged), now: Self.now)) == "token signature does not match")
    }

    @Test(arguments: [
        // alg none, with or without a signature part: never accepted.
        ("{\"alg\":\"none\"}", "token alg none not accepted here"),
        // ES256 named while only HMAC secrets are configured (the key-confusion attack's mirror).
        ("{\"alg\":\"ES256\"}", "token alg ES256 not accepted here"),
        ("{\"alg\":\"HS512\"}", "token alg HS512 not accepted here"),
        ("{\"typ\":\"JWT\"}", "token header has no alg"),
        ("[1,2]", "token JSON: not a JSON object"),
        ("{\"alg\":\"HS256\",\"alg\":\"none\"}", "token JSON: member \"alg\" appears twice"),
    ])
    func headersThatAreRefused(header: String, reason: String) {
        let claims = Base64URL.encode(JWTSigner.claims(subject: "alice", expires: Self.now + 60).utf8)
        let token = Base64URL.encode(header.utf8) + "." + claims + "."
        #expect(Self.refusal(Self.hs256Verifier().subject(of: token, now: Self.now)) == reason)
    }

    @Test(arguments: [
        ("{\"sub\":\"a\",\"exp\":1799999900}", "token expired"),
        ("{\"sub\":\"a\"}", "token has no exp"),
        ("{\"sub\":\"a\",\"exp\":\"soon\"}", "token has no exp"),
        ("{\"sub\":\"a\",\"exp\":1800000060,\"nbf\":1800000100}", "token not valid yet"),
        ("{\"exp\":1800000060}", "token has no sub"),
        ("{\"sub\":\"\",\"exp\":1800000060}", "token has no sub"),
        ("{\"sub\":\"a\",\"exp\":1800000060} x", "token JSON: bytes after the JSON object"),
        ("{\"sub\":\"a\u{01}\",\"exp\":1800000060}", "token JSON: control character in a string at byte 9"),
    ])
    func claimsThatAreRefused(claims: String, reason: String) {
        #expect(Self.refusal(Self.hs256Verifier().subject(of: Self.token(claims), now: Self.now)) == reason)
    }

    @Test func leewayCoversClockSkew() throws {
        // Expired 20 s ago, 30 s of leeway: still good; 40 s ago: not.
        let recent = Self.token(JWTSigner.claims(subject: "dave", expires: Self.now - 20))
        #expect(try Self.hs256Verifier().subject(of: recent, now: Self.now).get() == "dave")
        let stale = Self.token(JWTSigner.claims(subject: "dave", expires: Self.now - 40))
        #expect(Self.refusal(Self.hs256Verifier().subject(of: stale, now: Self.now)) == "token expired")
    }

    @Test func issuerAndAudienceAreCheckedWhenConfigured() throws {
        let verifier = Self.hs256Verifier(issuer: "https://login.example", audience: "tickets")
        let good = Self.token(JWTSigner.claims(subject: "erin", expires: Self.now + 60, issuer: "https://login.example", audience: "tickets"))
        #expect(try verifier.subject(of: good, now: Self.now).get() == "erin")
        let listed = Self.token("{\"sub\":\"erin\",\"exp\":1800000060,\"iss\":\"https://login.example\",\"aud\":[\"shop\",\"tickets\"]}")
        #expect(try verifier.subject(of: listed, now: Self.now).get() == "erin")
        let otherIssuer = Self.token(JWTSigner.claims(subject: "erin", expires: Self.now + 60, issuer: "https://evil.example", audience: "tickets"))
        #expect(Self.refusal(verifier.subject(of: otherIssuer, now: Self.now)) == "token issued by someone else")
        let otherAudience = Self.token(JWTSigner.claims(subject: "erin", expires: Self.now + 60, issuer: "https://login.example", audience: "shop"))
        #expect(Self.refusal(verifier.subject(of: otherAudience, now: Self.now)) == "token meant for another audience")
    }

    @Test(arguments: ["abc", "a.b", "a.b.c.d", "a!.b.c", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.x"])
    func textsThatAreNotJWTsAreRefused(text: String) {
        #expect(Self.refusal(Self.hs256Verifier().subject(of: text, now: Self.now)) != nil)
    }

    @Test func signedCookiesVerifyRotateAndExpire() throws {
        let key = AccountTokenKey.hmac(secret: Self.secret, name: "cookie.key")
        let cookie = SignedCookie(keys: [AccountTokenKey.hmac(secret: Self.otherSecret, name: "new.key"), key])
        let value = SignedCookie.make(account: "frank.o'neil@example.com", expires: Self.now + 60, key: key)
        #expect(try cookie.account(of: value, now: Self.now).get() == "frank.o'neil@example.com")
        #expect(Self.refusal(cookie.account(of: value, now: Self.now + 61)) == "account cookie expired")
        // Moving the expiry or the account breaks the MAC.
        let parts = value.split(separator: ".")
        let extended = parts[0] + "." + String(Self.now + 6000) + "." + parts[2]
        #expect(Self.refusal(cookie.account(of: String(extended), now: Self.now)) == "account cookie signature does not match")
        let other = Base64URL.encode("mallory".utf8) + "." + parts[1] + "." + parts[2]
        #expect(Self.refusal(cookie.account(of: other, now: Self.now)) == "account cookie signature does not match")
        #expect(Self.refusal(cookie.account(of: "frank", now: Self.now)) == "account cookie is not ACCOUNT.EXPIRES.MAC")
    }

    @Test func base64URLRoundTripsAndRefusesNonCanonicalText() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(Base64URL.decode(Array(Base64URL.encode(bytes).utf8)) == bytes)
        }
        #expect(Base64URL.decode(Array("TWE".utf8)) == Array("Ma".utf8))
        #expect(Base64URL.decode(Array("TWE=".utf8)) == Array("Ma".utf8))
        #expect(Base64URL.decode(Array("TWF".utf8)) == nil) // leftover bits set
        #expect(Base64URL.decode(Array("T".utf8)) == nil)
        #expect(Base64URL.decode(Array("TW+=".utf8)) == nil)
    }

    @Test func theJSONReaderDecodesEscapesAndNumbers() throws {
        let members = try JSONObjectReader.members(of: Array(#" { "a" : "x\"\\\/\n\u00e9\ud83d\ude00", "n": -1.5e2, "t": true, "z": null, "o": {"p": [1]}, "l": ["u", 2, "v"] } "#.utf8))
        #expect(members["a"] == .string("x\"\\/\né😀"))
        #expect(members["n"] == .number(-150))
        #expect(members["t"] == .bool(true))
        #expect(members["z"] == .null)
        #expect(members["o"] == .object)
        #expect(members["l"] == .strings(["u", "v"]))
        #expect(throws: JSONObjectReader.Failure.self) { try JSONObjectReader.members(of: Array(#"{"a": 01}"#.utf8)) }
        #expect(throws: JSONObjectReader.Failure.self) { try JSONObjectReader.members(of: Array(#"{"a": "\ud800"}"#.utf8)) }
        #expect(throws: JSONObjectReader.Failure.self) { try JSONObjectReader.members(of: Array(("{\"a\":" + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "}").utf8)) }
    }
}

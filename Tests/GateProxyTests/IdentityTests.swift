import Foundation
import GateCore
import GateTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// Accounts from signed tokens on a real gateway: a JWT's `sub` or a signed cookie's account
/// is what the per-account rules count; a forged, expired or foreign token is refused (401).
@Suite struct IdentityTests {
    static let secret = "a-login-service-secret-of-enough-length-0123"
    static let routes = "  - prefix: /slow/\n    upstream: tickets\n    purchase: true\n  - prefix: /\n    upstream: tickets\n"

    static func jwt(_ subject: String, expires: Int64 = Int64(Date().timeIntervalSince1970) + 600, secret: String = secret) -> String {
        JWTSigner.hs256(claims: JWTSigner.claims(subject: subject, expires: expires, audience: "tickets"), secret: Array(secret.utf8))
    }

    private static func send(_ harness: GatewayHarness, path: String, headers: [(String, String)]) async throws -> (status: Int, body: String) {
        let connection = try await harness.connect()
        defer { Task { await connection.close() } }
        let response = try await connection.request(.POST, path, headers: headers, body: "{}")
        return (response.status, response.body)
    }

    /// Two requests of one account at once on the purchase route: one goes through, one is
    /// refused as in flight — the account is what the token says, whatever else differs.
    private static func twoAtOnce(_ harness: GatewayHarness, _ first: [(String, String)], _ second: [(String, String)]) async throws -> [Int] {
        async let a = Self.send(harness, path: "/slow/2000", headers: first)
        try await Task.sleep(for: .milliseconds(300))
        async let b = Self.send(harness, path: "/slow/2000", headers: second)
        return try await [a.status, b.status].sorted()
    }

    @Test func aJWTsSubjectIsTheAccount() async throws {
        try await GatewayHarness.with(
            weights: [1], routes: Self.routes,
            extra: "identity:\n  jwt: {keys: [login.key], audience: tickets}\n",
            files: ["login.key": Self.secret + "\n"]
        ) { harness in
            // Two tokens for one account (issued at different times) are one account.
            let statuses = try await Self.twoAtOnce(
                harness,
                [("Authorization", "Bearer " + Self.jwt("alice"))],
                [("Authorization", "Bearer " + Self.jwt("alice", expires: Int64(Date().timeIntervalSince1970) + 900))]
            )
            #expect(statuses == [200, 429])
            // Another account is not held back by alice's flag.
            let bob = try await Self.twoAtOnce(harness, [("Authorization", "Bearer " + Self.jwt("carol"))], [("Authorization", "Bearer " + Self.jwt("bob"))])
            #expect(bob == [200, 200])
            #expect(harness.backends[0].requests == 3)
        }
    }

    @Test(arguments: [
        ("a token signed with another secret", "Bearer " + jwt("alice", secret: "someone-elses-secret-that-is-long-enough-99"), "token signature does not match"),
        ("an expired token", "Bearer " + jwt("alice", expires: 1_000_000), "token expired"),
        ("alg none", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.", "token alg none not accepted here"),
        ("not a JWT", "Bearer hello", "token is not a JWT"),
    ])
    func aBadTokenIsRefusedAndNeverReachesABackend(what: String, authorization: String, reason: String) async throws {
        try await GatewayHarness.with(
            weights: [1], routes: Self.routes,
            extra: "identity:\n  jwt: {keys: [login.key], audience: tickets}\n",
            files: ["login.key": Self.secret]
        ) { harness in
            let answer = try await Self.send(harness, path: "/slow/1", headers: [("Authorization", authorization)])
            #expect(answer.status == 401, "\(what)")
            #expect(answer.body.contains(reason), "\(what): \(answer.body)")
            #expect(answer.body.contains("\"code\":-1"))
            #expect(harness.backends[0].requests == 0)
            // No token at all: no account; the request goes on (the backend asks for a login).
            #expect(try await Self.send(harness, path: "/slow/1", headers: []).status == 200)
        }
    }

    @Test func aSignedCookiesAccountIsTheAccount() async throws {
        let key = AccountTokenKey.hmac(secret: Array(Self.secret.utf8), name: "cookie.key")
        let expires = Int64(Date().timeIntervalSince1970) + 600
        let cookie = "sg_account=" + SignedCookie.make(account: "dora", expires: expires, key: key)
        try await GatewayHarness.with(
            weights: [1], routes: Self.routes,
            extra: "identity:\n  signed_cookie: {name: sg_account, keys: [cookie.key]}\n",
            files: ["cookie.key": Self.secret]
        ) { harness in
            let statuses = try await Self.twoAtOnce(harness, [("Cookie", "theme=dark; " + cookie)], [("Cookie", cookie)])
            #expect(statuses == [200, 429])
            // The same account with a later expiry but the MAC of the first: refused.
            let forged = "sg_account=" + Base64URL.encode("dora".utf8) + "." + String(expires + 86_400) + "." + cookie.split(separator: ".").last!
            let answer = try await Self.send(harness, path: "/slow/1", headers: [("Cookie", forged)])
            #expect(answer.status == 401)
            #expect(answer.body.contains("account cookie signature does not match"))
        }
    }
}

import Foundation
import GateCore
import Testing

@Suite("Proof of work, challenges and passes")
struct ChallengeTests {
    private let start = MonotonicInstant(nanoseconds: 3_000_000_000)

    @Test("a solution found by search verifies; a wrong nonce or a harder difficulty does not")
    func proofOfWork() throws {
        let nonce = try #require(ProofOfWork.solve(challenge: "abc", difficulty: 12))
        #expect(ProofOfWork.verify(challenge: "abc", nonce: nonce, difficulty: 12))
        #expect(ProofOfWork.verify(challenge: "abc", nonce: "anything", difficulty: 0))
        #expect(!ProofOfWork.verify(challenge: "abc", nonce: "", difficulty: 0))
        #expect(!ProofOfWork.verify(challenge: "abc", nonce: String(repeating: "n", count: 65), difficulty: 0))
        // 256 zero bits: no nonce will ever do.
        #expect(!ProofOfWork.verify(challenge: "abc", nonce: nonce, difficulty: 257))
    }

    private func challenge(_ id: String, difficulty: Int = 4, client: String = "203.0.113.7", expires: Int = 60) -> ChallengeBook.Challenge {
        ChallengeBook.Challenge(id: id, difficulty: difficulty, client: client, route: "POST /buy", expires: self.start + .seconds(expires))
    }

    @Test("challenges are single use, bound to their client, and expire")
    func book() throws {
        var book = ChallengeBook()
        _ = book.issue(self.challenge("c1"), now: self.start)
        let nonce = try #require(ProofOfWork.solve(challenge: "c1", difficulty: 4))
        let solved = book.redeem(id: "c1", nonce: nonce, client: "203.0.113.7", now: self.start)
        #expect((try? solved.get())?.route == "POST /buy")
        // Replayed: refused.
        let replayed = book.redeem(id: "c1", nonce: nonce, client: "203.0.113.7", now: self.start)
        #expect(replayed == .failure(.unknown))

        _ = book.issue(self.challenge("c2"), now: self.start)
        let stolen = book.redeem(id: "c2", nonce: "x", client: "198.51.100.1", now: self.start)
        #expect(stolen == .failure(.otherClient))

        _ = book.issue(self.challenge("c3", difficulty: 30), now: self.start)
        let wrong = book.redeem(id: "c3", nonce: "0", client: "203.0.113.7", now: self.start)
        #expect(wrong == .failure(.wrongSolution))
        // A wrong answer used the challenge up.
        let retried = book.redeem(id: "c3", nonce: "1", client: "203.0.113.7", now: self.start)
        #expect(retried == .failure(.unknown))

        _ = book.issue(self.challenge("c4", expires: 1), now: self.start)
        let late = book.redeem(id: "c4", nonce: "x", client: "203.0.113.7", now: self.start + .seconds(2))
        #expect(late == .failure(.expired))
    }

    private let keyring = PassToken.Keyring(current: "k2", keys: ["k1": Array(repeating: 1, count: 32), "k2": Array(repeating: 2, count: 32)])
    private let client = IPAddress("203.0.113.7")!

    private func pass(key: String = "k2", expires: Int64 = 1_000, route: String = "POST /buy.json") -> String {
        PassToken(keyID: key, expires: expires, prefix: PassToken.prefix(of: self.client), route: route, nonce: "n1").encoded(with: self.keyring)
    }

    @Test("a pass verifies for its network and route until it expires, with any listed key")
    func passes() throws {
        let token = try PassToken.verify(self.pass(), keyring: self.keyring, client: self.client, route: "POST /buy.json", now: 999).get()
        #expect(token.nonce == "n1")
        #expect(token.route == "POST /buy.json")
        // Same /24: accepted. Another network, another route, too late: refused.
        #expect((try? PassToken.verify(self.pass(), keyring: self.keyring, client: IPAddress("203.0.113.200")!, route: "POST /buy.json", now: 999).get()) != nil)
        #expect(PassToken.verify(self.pass(), keyring: self.keyring, client: IPAddress("203.0.114.7")!, route: "POST /buy.json", now: 999) == .failure(.otherClient))
        #expect(PassToken.verify(self.pass(), keyring: self.keyring, client: self.client, route: "POST /pay", now: 999) == .failure(.otherRoute))
        #expect(PassToken.verify(self.pass(), keyring: self.keyring, client: self.client, route: "POST /buy.json", now: 1_000) == .failure(.expired))
        // Rotation: a pass signed with the older key still verifies while it is listed.
        #expect((try? PassToken.verify(self.pass(key: "k1"), keyring: self.keyring, client: self.client, route: "POST /buy.json", now: 1).get()) != nil)
        let rotated = PassToken.Keyring(current: "k3", keys: ["k3": Array(repeating: 3, count: 32)])
        #expect(PassToken.verify(self.pass(key: "k1"), keyring: rotated, client: self.client, route: "POST /buy.json", now: 1) == .failure(.unknownKey))
    }

    @Test("a forged or altered pass is refused")
    func forgery() {
        let genuine = self.pass()
        // Extend the expiry without the key.
        let altered = genuine.replacingOccurrences(of: ".1000.", with: ".9999.")
        #expect(PassToken.verify(altered, keyring: self.keyring, client: self.client, route: "POST /buy.json", now: 1) == .failure(.badSignature))
        let otherKeyring = PassToken.Keyring(current: "k2", keys: ["k2": Array(repeating: 9, count: 32)])
        #expect(PassToken.verify(genuine, keyring: otherKeyring, client: self.client, route: "POST /buy.json", now: 1) == .failure(.badSignature))
        for junk in ["", "v1", "v2.k2.1.a.b.c.00", genuine + ".x", String(repeating: "a", count: 600)] {
            #expect(PassToken.verify(junk, keyring: self.keyring, client: self.client, route: "POST /buy.json", now: 1) == .failure(.malformed))
        }
    }
}

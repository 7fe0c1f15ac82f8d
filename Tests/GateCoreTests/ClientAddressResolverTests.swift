import GateCore
import Testing

@Suite("Client address resolver")
struct ClientAddressResolverTests {
    typealias Resolution = ClientAddressResolver.Resolution

    static let trustedPeer = "10.0.0.1"
    static let untrustedPeer = "198.51.100.1"

    func resolve(peer: String, _ headers: [String], maximumEntries: Int = ClientAddressResolver.defaultMaximumEntries) throws -> Resolution {
        let proxies = try TrustedProxies(parsing: ["10.0.0.0/8", "2001:db8:ffff::/48"])
        let resolver = ClientAddressResolver(trustedProxies: proxies, maximumEntries: maximumEntries)
        return resolver.resolve(peer: try #require(IPAddress(peer)), forwardedFor: headers)
    }

    func expected(_ address: String, _ source: Resolution.Source, _ anomaly: Resolution.Anomaly? = nil) throws -> Resolution {
        Resolution(address: try #require(IPAddress(address)), source: source, anomaly: anomaly)
    }

    @Test("an untrusted peer is the client and X-Forwarded-For is ignored", arguments: [
        [], ["203.0.113.7"], ["10.0.0.5"], ["203.0.113.7, 10.0.0.5"], ["unknown"], [""], ["2001:db8::7", "192.0.2.1"],
    ])
    func untrustedPeer(headers: [String]) throws {
        #expect(try self.resolve(peer: Self.untrustedPeer, headers) == self.expected(Self.untrustedPeer, .peer))
    }

    @Test("a trusted peer without X-Forwarded-For is the client")
    func trustedPeerWithoutHeader() throws {
        #expect(try self.resolve(peer: Self.trustedPeer, []) == self.expected(Self.trustedPeer, .peer))
    }

    @Test("a trusted peer with one X-Forwarded-For entry: the entry is the client")
    func trustedPeerSingleEntry() throws {
        #expect(try self.resolve(peer: Self.trustedPeer, ["203.0.113.7"]) == self.expected("203.0.113.7", .forwardedFor(index: 0)))
        #expect(try self.resolve(peer: "2001:db8:ffff::1", ["192.0.2.1"]) == self.expected("192.0.2.1", .forwardedFor(index: 0)))
        #expect(try self.resolve(peer: "::ffff:10.0.0.1", ["2001:db8::7"]) == self.expected("2001:db8::7", .forwardedFor(index: 0)))
    }

    @Test("several X-Forwarded-For headers are merged in order, indices counting across them", arguments: [
        (["203.0.113.7, 10.0.0.3", "10.0.0.2"], "203.0.113.7", 0),
        (["192.0.2.9", "203.0.113.7, 10.0.0.3"], "203.0.113.7", 1),
        (["192.0.2.9, 192.0.2.8", "203.0.113.7", "10.0.0.3, 10.0.0.2"], "203.0.113.7", 2),
        (["10.0.0.9", "10.0.0.8"], "10.0.0.9", 0),
    ])
    func mergedHeaders(headers: [String], client: String, index: Int) throws {
        #expect(try self.resolve(peer: Self.trustedPeer, headers) == self.expected(client, .forwardedFor(index: index)))
    }

    @Test("the rightmost untrusted entry behind a chain of trusted proxies is the client; spoofed entries left of it are not", arguments: [
        ("6.6.6.6, 203.0.113.7, 10.0.0.5, 10.0.0.4", "203.0.113.7", 1),
        ("203.0.113.7, 10.0.0.5, 2001:db8:ffff::9, 10.0.0.4", "203.0.113.7", 0),
        ("10.0.0.6, 203.0.113.7, 10.0.0.4", "203.0.113.7", 1),
        ("2001:db8::7, 2001:db8:ffff::2", "2001:db8::7", 0),
    ])
    func rightmostUntrusted(header: String, client: String, index: Int) throws {
        #expect(try self.resolve(peer: Self.trustedPeer, [header]) == self.expected(client, .forwardedFor(index: index)))
    }

    @Test("every entry trusted: the leftmost entry is the client")
    func allTrusted() throws {
        #expect(try self.resolve(peer: Self.trustedPeer, ["10.0.0.9, 10.0.0.8, 2001:db8:ffff::3"]) == self.expected("10.0.0.9", .forwardedFor(index: 0)))
    }

    @Test("an entry that is not an address stops the walk at the last address accepted", arguments: [
        (["203.0.113.7, unknown, 10.0.0.4"], "10.0.0.4", Resolution.Source.forwardedFor(index: 2), 1),
        (["203.0.113.7,,10.0.0.4"], "10.0.0.4", .forwardedFor(index: 2), 1),
        (["203.0.113.7, _hidden, 10.0.0.5, 10.0.0.4"], "10.0.0.5", .forwardedFor(index: 2), 1),
        (["garbage"], "10.0.0.1", .peer, 0),
        ([""], "10.0.0.1", .peer, 0),
        (["  "], "10.0.0.1", .peer, 0),
        (["203.0.113.7,"], "10.0.0.1", .peer, 1),
        (["203.0.113.7", ""], "10.0.0.1", .peer, 1),
        (["203.0.113.7, 10.0.0.4", "fe80::1%eth0"], "10.0.0.1", .peer, 2),
    ])
    func garbageStopsTheWalk(headers: [String], client: String, source: Resolution.Source, malformed: Int) throws {
        let resolution = try self.resolve(peer: Self.trustedPeer, headers)
        #expect(resolution == (try self.expected(client, source, .malformedEntry(index: malformed))))
    }

    @Test("garbage left of the client is never looked at")
    func garbageBeyondTheClient() throws {
        #expect(try self.resolve(peer: Self.trustedPeer, ["unknown, , 203.0.113.7, 10.0.0.4"]) == self.expected("203.0.113.7", .forwardedFor(index: 2)))
    }

    @Test("entries are trimmed and ports and brackets stripped", arguments: [
        ("203.0.113.7:4711", "203.0.113.7"),
        ("203.0.113.7:0", "203.0.113.7"),
        ("203.0.113.7:65535", "203.0.113.7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("[::ffff:203.0.113.7]:443", "203.0.113.7"),
        ("2001:db8::7", "2001:db8::7"),
        (" \t203.0.113.7 \t", "203.0.113.7"),
        ("\t[2001:db8::7]:443 ", "2001:db8::7"),
    ])
    func portsAndBrackets(entry: String, client: String) throws {
        #expect(try self.resolve(peer: Self.trustedPeer, ["192.0.2.99, \(entry)"]) == self.expected(client, .forwardedFor(index: 1)))
    }

    @Test("trusted entries with ports and brackets are recognised as trusted")
    func trustedWithPorts() throws {
        let resolution = try self.resolve(peer: Self.trustedPeer, ["203.0.113.7, [2001:db8:ffff::2]:8443, 10.0.0.4:8080"])
        #expect(resolution == (try self.expected("203.0.113.7", .forwardedFor(index: 0))))
    }

    @Test("malformed ports, brackets and other near-addresses are garbage", arguments: [
        "203.0.113.7:", "203.0.113.7:65536", "203.0.113.7:123456", "203.0.113.7:+80", "203.0.113.7:8a",
        "203.0.113.7:80:90", "[203.0.113.7]", "[203.0.113.7]:80", "[2001:db8::7", "[2001:db8::7]80", "[2001:db8::7]:",
        "[[2001:db8::7]]", "2001:db8::7]", "\"203.0.113.7\"", "203.0.113.7 192.0.2.1", "unknown", "_hidden",
        "203.0.113.007", "example.com", "example.com:80",
    ])
    func garbageForms(entry: String) throws {
        let resolution = try self.resolve(peer: Self.trustedPeer, ["192.0.2.99, \(entry), 10.0.0.4"])
        #expect(resolution == (try self.expected("10.0.0.4", .forwardedFor(index: 2), .malformedEntry(index: 1))))
    }

    func chain(trusted count: Int) -> String {
        (["203.0.113.7"] + (1...count).map { "10.0.\($0 / 256).\($0 % 256)" }).joined(separator: ", ")
    }

    @Test("the entry cap: 32 entries are examined, not one more")
    func entryCap() throws {
        // 32 entries in all: every one examined, the leftmost is the client.
        #expect(try self.resolve(peer: Self.trustedPeer, [self.chain(trusted: 31)]) == self.expected("203.0.113.7", .forwardedFor(index: 0)))
        // 33: the client is out of reach; the walk ends at the 32nd entry from the right.
        #expect(try self.resolve(peer: Self.trustedPeer, [self.chain(trusted: 32)]) == self.expected("10.0.0.1", .forwardedFor(index: 1), .entryCapReached))
        // 33 entries, all trusted: the leftmost is not reached either.
        #expect(try self.resolve(peer: Self.trustedPeer, ["10.9.9.9, " + self.chain(trusted: 32).dropFirst(13)]) == self.expected("10.0.0.1", .forwardedFor(index: 1), .entryCapReached))
    }

    @Test("the entry cap counts across merged headers and can be configured", arguments: [
        (2, "10.0.0.5", 2, true),
        (3, "203.0.113.7", 1, false),
        (0, "10.0.0.4", 3, true),
    ])
    func configuredCap(maximumEntries: Int, client: String, index: Int, capped: Bool) throws {
        let resolution = try self.resolve(peer: Self.trustedPeer, ["192.0.2.9, 203.0.113.7", "10.0.0.5", "10.0.0.4"], maximumEntries: maximumEntries)
        #expect(resolution == (try self.expected(client, .forwardedFor(index: index), capped ? .entryCapReached : nil)))
    }

    @Test("a huge header costs a comma count only; indices still count from the left")
    func hugeHeader() throws {
        let header = Array(repeating: "garbage", count: 100_000).joined(separator: ",") + ", 203.0.113.7, 10.0.0.5"
        #expect(try self.resolve(peer: Self.trustedPeer, [header]) == self.expected("203.0.113.7", .forwardedFor(index: 100_000)))
    }

    @Test("the resolution reads well in a log line")
    func description() throws {
        #expect(try self.expected("203.0.113.7", .forwardedFor(index: 2)).description == "203.0.113.7 (x-forwarded-for[2])")
        #expect(try self.expected("10.0.0.1", .peer, .malformedEntry(index: 0)).description == "10.0.0.1 (peer), x-forwarded-for[0] is not an address")
        #expect(try self.expected("10.0.0.1", .forwardedFor(index: 1), .entryCapReached).description == "10.0.0.1 (x-forwarded-for[1]), x-forwarded-for entry cap reached")
    }
}

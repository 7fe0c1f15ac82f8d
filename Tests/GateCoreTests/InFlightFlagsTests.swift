import GateCore
import Testing

@Suite("In-flight flags")
struct InFlightFlagsTests {
    private let start = MonotonicInstant(nanoseconds: 1_000_000_000)
    private let ttl = Duration.seconds(30)

    @Test("one flag per account: the second request is refused until the owner releases")
    func oneAtATime() {
        var flags = InFlightFlags()
        let first = flags.acquire("alice", token: 1, ttl: self.ttl, now: self.start)
        let second = flags.acquire("alice", token: 2, ttl: self.ttl, now: self.start)
        let other = flags.acquire("bob", token: 3, ttl: self.ttl, now: self.start)
        #expect(first == .acquired)
        #expect(second == .held(until: self.start + self.ttl))
        // Another account is independent.
        #expect(other == .acquired)
        let released = flags.release("alice", token: 1)
        let again = flags.acquire("alice", token: 4, ttl: self.ttl, now: self.start)
        #expect(released)
        #expect(again == .acquired)
    }

    @Test("only the owner's token releases a flag")
    func ownerSafeRelease() {
        var flags = InFlightFlags()
        _ = flags.acquire("alice", token: 1, ttl: self.ttl, now: self.start)
        let stranger = flags.release("alice", token: 9)
        #expect(!stranger)
        #expect(flags.flag(of: "alice", now: self.start)?.token == 1)
        // A late release of a request whose flag lapsed and was retaken frees nothing.
        let later = self.start + .seconds(31)
        let retaken = flags.acquire("alice", token: 2, ttl: self.ttl, now: later)
        let late = flags.release("alice", token: 1)
        #expect(retaken == .acquired)
        #expect(!late)
        #expect(flags.flag(of: "alice", now: later)?.token == 2)
    }

    @Test("a flag lapses after its TTL (the net for a release that never came)")
    func lapses() {
        var flags = InFlightFlags()
        _ = flags.acquire("alice", token: 1, ttl: .seconds(5), now: self.start)
        let early = flags.acquire("alice", token: 2, ttl: .seconds(5), now: self.start + .milliseconds(4_999))
        let onTime = flags.acquire("alice", token: 2, ttl: .seconds(5), now: self.start + .seconds(5))
        #expect(early != .acquired)
        #expect(onTime == .acquired)
    }

    @Test("a sweep drops lapsed flags; a full table refuses new accounts instead of growing")
    func capacity() {
        var flags = InFlightFlags(capacity: 2)
        _ = flags.acquire("a", token: 1, ttl: .seconds(1), now: self.start)
        _ = flags.acquire("b", token: 2, ttl: .seconds(10), now: self.start)
        let full = flags.acquire("c", token: 3, ttl: .seconds(10), now: self.start)
        #expect(full == .held(until: self.start + .seconds(10)))
        #expect(flags.count == 2)
        // Once "a" lapsed, the sweep on the way in makes room.
        let room = flags.acquire("c", token: 3, ttl: .seconds(10), now: self.start + .seconds(2))
        #expect(room == .acquired)
        #expect(flags.flag(of: "a", now: self.start + .seconds(2)) == nil)
        let swept = flags.sweep(now: self.start + .seconds(20))
        #expect(swept == 2)
        #expect(flags.count == 0)
    }
}

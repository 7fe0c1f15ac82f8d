import GateCore
import Testing

@Suite("Sliding windows and bans")
struct SlidingWindowTests {
    private let start = MonotonicInstant(nanoseconds: 5_000_000_000)

    private func at(_ milliseconds: Int) -> MonotonicInstant {
        self.start + .milliseconds(milliseconds)
    }

    @Test("the estimate weights the previous window by its overlap")
    func twoWindowEstimate() {
        var window = SlidingWindow(length: .seconds(10), now: self.start)
        for _ in 0..<10 {
            _ = window.record(now: self.at(1_000))
        }
        #expect(window.estimate(now: self.at(9_000)) == 10)
        // 2.5 s into the next window: 75% of the previous 10, plus 4 new.
        var estimate = 0.0
        for _ in 0..<4 {
            estimate = window.record(now: self.at(12_500))
        }
        #expect(estimate == 7.5 + 4)
        // Two windows later nothing counts.
        #expect(window.estimate(now: self.at(30_000)) == 0)
        #expect(window.isIdle(now: self.at(30_000)))
    }

    @Test("a skipped window leaves no previous count")
    func skippedWindow() {
        var window = SlidingWindow(length: .seconds(1), now: self.start)
        _ = window.record(5, now: self.at(100))
        let after = window.record(now: self.at(2_100))
        #expect(after == 1)
    }

    @Test("the table counts per key and stays bounded")
    func table() {
        var table = SlidingWindowTable(length: .seconds(10), capacity: 2)
        let counts = [table.record("a", now: self.start), table.record("a", now: self.start), table.record("b", now: self.start)]
        #expect(counts == [1, 2, 1])
        // Full of live keys: a new key is not counted.
        let refused = table.record("c", now: self.start)
        #expect(refused == nil)
        #expect(table.estimate("c", now: self.start) == 0)
        // Once the old keys went idle, the sweep on the way in makes room.
        let admitted = table.record("c", now: self.at(25_000))
        #expect(admitted == 1)
        #expect(table.count == 1)
    }

    @Test("bans: checked with hits, extended never shortened, lifted, and they end")
    func bans() {
        var list = BanList()
        list.ban(.ip, "10.0.0.1", rule: "burst", reason: "over 50 in 10s", for: .seconds(60), now: self.start)
        let first = list.check(.ip, "10.0.0.1", now: self.at(1_000))
        #expect(first?.rule == "burst")
        #expect(first?.hits == 1)
        let otherKind = list.check(.account, "10.0.0.1", now: self.at(1_000))
        #expect(otherKind == nil)
        // A shorter ban does not cut the running one.
        list.ban(.ip, "10.0.0.1", rule: "burst", reason: "again", for: .seconds(5), now: self.at(2_000))
        let extended = list.check(.ip, "10.0.0.1", now: self.at(30_000))
        let ended = list.check(.ip, "10.0.0.1", now: self.at(60_000))
        #expect(extended?.hits == 2)
        #expect(ended == nil)
        list.ban(.account, "bot", rule: "r", reason: "x", for: .seconds(60), now: self.start)
        #expect(list.list(now: self.start).map(\.key) == ["bot"])
        let lifted = list.lift(.account, "bot")
        let again = list.lift(.account, "bot")
        let afterLift = list.check(.account, "bot", now: self.start)
        #expect(lifted)
        #expect(!again)
        #expect(afterLift == nil)
    }
}

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

@Suite("Distinct values per key")
struct DistinctWindowTableTests {
    private let start = MonotonicInstant(nanoseconds: 9_000_000_000)

    @Test("counts distinct values within the window, capped, per key")
    func distinct() {
        var table = DistinctWindowTable(length: .seconds(10), cap: 3)
        let first = table.record("10.0.0.1", value: "a", now: self.start)
        let repeated = table.record("10.0.0.1", value: "a", now: self.start + .seconds(1))
        let second = table.record("10.0.0.1", value: "b", now: self.start + .seconds(2))
        let other = table.record("10.0.0.2", value: "a", now: self.start + .seconds(2))
        #expect([first, repeated, second, other] == [1, 1, 2, 1])
        // Past the cap the count stays at the cap: "more than 2" is all a threshold of 2 needs.
        _ = table.record("10.0.0.1", value: "c", now: self.start + .seconds(3))
        let capped = table.record("10.0.0.1", value: "d", now: self.start + .seconds(3))
        #expect(capped == 3)
        // "a" was last seen at 1 s: at 11.5 s it has left the window.
        let later = table.record("10.0.0.1", value: "e", now: self.start + .milliseconds(11_500))
        #expect(later == 3)
        let swept = table.sweep(now: self.start + .seconds(30))
        #expect(swept == 2)
    }
}

import GateCore
import Testing

/// Cluster windows: this gateway's counts plus the cluster totals last read, synced in batches.
@Suite struct ClusterWindowCountsTests {
    static let key = ClusterWindowCounts.Key(rule: "burst", key: "203.0.113.7")
    /// A 10 s window; t0 is the start of bucket 100.
    static let length: Int64 = 10_000
    static let t0: Int64 = 100 * 10_000

    @Test func ownCountsAndTheClusterTotalsMakeTheEstimate() {
        var counts = ClusterWindowCounts()
        for _ in 0..<3 {
            _ = counts.record(Self.key, lengthMillis: Self.length, now: Self.t0 + 1_000)
        }
        #expect(counts.estimate(Self.key, now: Self.t0 + 1_000) == 3)
        let items = counts.takeSync(now: Self.t0 + 1_000)
        #expect(items.count == 1)
        #expect(items[0].bucket == 100)
        #expect(items[0].adds == [.init(bucket: 100, count: 3)])
        // Still counted while the sync is under way, not twice.
        #expect(counts.estimate(Self.key, now: Self.t0 + 1_000) == 3)
        // Redis says the cluster has 12 in this bucket (ours included) and 20 in the one before.
        counts.applySync(items[0], current: 12, previous: 20)
        // Half way through the bucket: 12 + 20 × 0.5.
        #expect(counts.estimate(Self.key, now: Self.t0 + 5_000) == 22)
        let next = counts.record(Self.key, lengthMillis: Self.length, now: Self.t0 + 5_000)
        #expect(next == 23)
        // Nothing new since: nothing to send.
        _ = counts.takeSync(now: Self.t0 + 5_000)
        #expect(counts.takeSync(now: Self.t0 + 5_500).isEmpty)
    }

    @Test func aFailedSyncKeepsTheCountsForTheNextOne() {
        var counts = ClusterWindowCounts()
        _ = counts.record(Self.key, lengthMillis: Self.length, now: Self.t0)
        _ = counts.record(Self.key, lengthMillis: Self.length, now: Self.t0)
        let failed = counts.takeSync(now: Self.t0)
        counts.restoreSync(failed[0])
        #expect(counts.estimate(Self.key, now: Self.t0) == 2)
        _ = counts.record(Self.key, lengthMillis: Self.length, now: Self.t0 + 100)
        let retried = counts.takeSync(now: Self.t0 + 100)
        #expect(retried.first?.adds == [.init(bucket: 100, count: 3)])
    }

    @Test func theBucketRollsOnWallClockTimeAndCountsFromTheLastBucketAreStillSent() {
        var counts = ClusterWindowCounts()
        _ = counts.record(Self.key, lengthMillis: Self.length, now: Self.t0 + 9_900)
        let first = counts.takeSync(now: Self.t0 + 9_900)
        counts.applySync(first[0], current: 40, previous: 0)
        _ = counts.record(Self.key, lengthMillis: Self.length, now: Self.t0 + 9_950)
        // Into bucket 101: the 40 become the previous bucket's, weighted by what is left of it.
        #expect(counts.estimate(Self.key, now: Self.t0 + 12_500) == 0 + 41 * 0.75)
        _ = counts.record(Self.key, lengthMillis: Self.length, now: Self.t0 + 12_500)
        let second = counts.takeSync(now: Self.t0 + 12_500)
        #expect(second.first?.bucket == 101)
        #expect(second.first?.adds == [.init(bucket: 100, count: 1), .init(bucket: 101, count: 1)])
        counts.applySync(second[0], current: 5, previous: 45)
        #expect(counts.estimate(Self.key, now: Self.t0 + 15_000) == 5 + 45 * 0.5)
        // Two lengths without use: forgotten.
        #expect(counts.sweep(now: Self.t0 + 12_500 + 2 * Self.length) == 1)
        #expect(counts.count == 0)
    }

    @Test func aFullTableCountsNoNewKey() {
        var counts = ClusterWindowCounts(capacity: 1)
        #expect(counts.record(Self.key, lengthMillis: Self.length, now: Self.t0) == 1)
        #expect(counts.record(.init(rule: "burst", key: "other"), lengthMillis: Self.length, now: Self.t0) == nil)
        #expect(ClusterWindowCounts.redisKey(Self.key, bucket: 100) == "spikegate:window:{burst|203.0.113.7}:100")
    }
}

@Suite struct ClusterBanTests {
    @Test func aBanRoundTripsThroughItsHashEntry() {
        let ban = ClusterBan(kind: .account, key: "bot|7", rule: "burst", reason: "over 5 requests in 10s | really", until: 1_800_000_000_123)
        #expect(ban.field == "account|bot|7")
        #expect(ClusterBan(field: ban.field, value: ban.value) == ban)
    }

    @Test(arguments: [("ip", "x|y|z"), ("cat|k", "1|r|why"), ("ip|", "1|r|why"), ("ip|k", "soon|r|why"), ("ip|k", "1|r")])
    func entriesThatAreNoBanAreIgnored(field: String, value: String) {
        #expect(ClusterBan(field: field, value: value) == nil)
    }
}

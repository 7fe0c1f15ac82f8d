import GateCore
import Testing

/// Key → slot as Redis computes it (values from `CLUSTER KEYSLOT` on redis-server 7.0), the
/// slot map and the redirections.
@Suite struct RedisHashSlotTests {
    @Test func slotsMatchRedis() {
        // CRC16/XMODEM check value: "123456789" → 0x31C3 = 12739.
        #expect(RedisHashSlot.of("123456789") == 12_739)
        #expect(RedisHashSlot.of("foo") == 12_182)
        #expect(RedisHashSlot.of("") == 0)
        // Hash tags: the first {...} with something inside.
        #expect(RedisHashSlot.of("{user1000}.following") == 3_443)
        #expect(RedisHashSlot.of("{user1000}.following") == RedisHashSlot.of("user1000"))
        #expect(RedisHashSlot.of("{user1000}.followers") == RedisHashSlot.of("{user1000}.following"))
        #expect(RedisHashSlot.of("foo{}{bar}") == 8_363)
        #expect(RedisHashSlot.of("foo{}{bar}") != RedisHashSlot.of("bar"), "an empty tag means the whole key is hashed")
        #expect(RedisHashSlot.of("foo{{bar}}zap") == 4_015 && RedisHashSlot.of("{bar") == 4_015)
        #expect(RedisHashSlot.of("foo{bar}{zap}") == 5_061 && RedisHashSlot.of("bar") == 5_061)
        // SpikeGate's key families keep each sale, account and window in one slot.
        #expect(RedisHashSlot.of("{sale:concert}:meta") == RedisHashSlot.of("{sale:concert}:orders"))
        #expect(RedisHashSlot.of("spikegate:{bans}") == RedisHashSlot.of("spikegate:{bans}:version"))
    }

    @Test func theMapFollowsRangesAndMovedAnswers() {
        let a = RedisSlotMap.Node(host: "127.0.0.1", port: 7001)
        let b = RedisSlotMap.Node(host: "127.0.0.1", port: 7002)
        var map = RedisSlotMap(ranges: [(0, 8_191, a), (8_192, 16_000, b)])
        #expect(map.node(forSlot: 0) == a && map.node(forSlot: 8_192) == b)
        #expect(map.node(forSlot: 16_001) == nil && map.unservedSlots == 383)
        #expect(map.node(forSlot: -1) == nil && map.node(forSlot: 16_384) == nil)
        map.moved(slot: 5, to: b)
        #expect(map.node(forSlot: 5) == b && map.node(forSlot: 6) == a)
        let c = RedisSlotMap.Node(host: "::1", port: 7003)
        map.moved(slot: 16_383, to: c)
        #expect(map.servingNodes == [a, b, c] && c.description == "[::1]:7003")
    }

    @Test func redirectsAreRead() {
        #expect(RedisClusterRedirect(errorReply: "MOVED 3999 127.0.0.1:6381") == .moved(slot: 3_999, node: .init(host: "127.0.0.1", port: 6_381)))
        #expect(RedisClusterRedirect(errorReply: "ASK 3999 [::1]:6381") == .ask(slot: 3_999, node: .init(host: "::1", port: 6_381)))
        #expect(RedisClusterRedirect(errorReply: "TRYAGAIN Multiple keys request during rehashing of slot") == .tryAgain)
        #expect(RedisClusterRedirect(errorReply: "ERR unknown command") == nil)
        #expect(RedisClusterRedirect(errorReply: "MOVED x 127.0.0.1:1") == nil)
        #expect(RedisClusterRedirect(errorReply: "MOVED 1 nowhere") == nil)
        // Redis 7 leaves the host out when it is the one asked.
        let asked = RedisSlotMap.Node(host: "10.0.0.7", port: 7_000)
        #expect(RedisClusterRedirect(errorReply: "MOVED 5 :7002")?.naming(asked) == .moved(slot: 5, node: .init(host: "10.0.0.7", port: 7_002)))
        #expect(RedisClusterRedirect(errorReply: "ASK 5 10.0.0.9:7002")?.naming(asked) == .ask(slot: 5, node: .init(host: "10.0.0.9", port: 7_002)))
    }
}

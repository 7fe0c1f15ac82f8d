import GateCore
import GateRedis
import Logging

/// Sends this gateway's `scope: cluster` window counts to Redis and reads the cluster's totals
/// back, every `interval` (Kong's `sync_rate`): one pipeline per round on the shared connection
/// — per key `INCRBY` and `PEXPIRE` for each bucket counted here, then `MGET` of the key's
/// previous and current bucket. A failed round (Redis down, slow) keeps the counts for the next
/// one; meanwhile the windows go on with what they know (the cluster total read last plus this
/// gateway's own counts), so a Redis outage degrades them to local windows, never to none.
enum ClusterWindowSync {
    static let interval = Duration.milliseconds(250)

    /// One round; returns how many keys were synced (0 when nothing was counted).
    @discardableResult
    static func round(abuse: AbuseGuard, client: RedisClient, logger: Logger) async -> Int {
        let items = abuse.takeClusterSync(now: AbuseGuard.wallMillis())
        guard !items.isEmpty else {
            return 0
        }
        var commands: [RedisCommand] = []
        for item in items {
            for add in item.adds {
                let key = RedisArgument.string(ClusterWindowCounts.redisKey(item.key, bucket: add.bucket))
                commands.append(RedisCommand("INCRBY", key, .integer(Int64(add.count))))
                // Kept while any gateway may still weigh it: two lengths and a second.
                commands.append(RedisCommand("PEXPIRE", key, .integer(2 * item.lengthMillis + 1000)))
            }
            commands.append(RedisCommand(
                "MGET",
                .string(ClusterWindowCounts.redisKey(item.key, bucket: item.bucket - 1)),
                .string(ClusterWindowCounts.redisKey(item.key, bucket: item.bucket))
            ))
        }
        let replies: [RESPValue]
        do {
            replies = try await client.pipeline(commands)
        } catch {
            logger.debug("cluster window counts not synced; kept for the next round", metadata: ["keys": "\(items.count)", "error": "\(error)"])
            abuse.finishClusterSync(items.map { ($0, nil) })
            return 0
        }
        var results: [(item: ClusterWindowCounts.SyncItem, totals: (current: Int, previous: Int)?)] = []
        var index = 0
        for item in items {
            let count = item.adds.count * 2 + 1
            guard index + count <= replies.count else {
                results.append((item, nil))
                continue
            }
            let mine = replies[index..<index + count]
            index += count
            guard !mine.contains(where: { if case .error = $0 { return true } else { return false } }),
                  let totals = mine.last?.array, totals.count == 2
            else {
                results.append((item, nil))
                continue
            }
            results.append((item, (current: Int(totals[1].int ?? 0), previous: Int(totals[0].int ?? 0))))
        }
        abuse.finishClusterSync(results)
        return items.count
    }
}

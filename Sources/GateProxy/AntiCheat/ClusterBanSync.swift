import GateCore
import GateRedis
import Logging

/// Shares bans between the gateways on one Redis, in the same 250 ms rounds as the cluster
/// windows: bans made or lifted here go into the `spikegate:{bans}` hash (`HSET` with the
/// wall-clock end, `HDEL` for a lift) and bump its version (`INCR`); each round reads the
/// version and, when it moved, the whole hash, and makes this gateway's bans agree (a ban made
/// by one gateway holds on every gateway; an unblock on one lifts it everywhere). Entries whose
/// end has passed are removed by whoever reads them.
enum ClusterBanSync {
    @discardableResult
    static func round(abuse: AbuseGuard, client: RedisClient, logger: Logger) async -> Bool {
        let changes = abuse.takeBanChanges()
        let nowWall = AbuseGuard.wallMillis()
        if !changes.isEmpty {
            var commands: [RedisCommand] = []
            for change in changes {
                switch change {
                case .banned(let kind, let key, let rule, let reason, let left):
                    let until = nowWall + left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
                    let ban = ClusterBan(kind: kind, key: key, rule: rule, reason: reason, until: until)
                    commands.append(RedisCommand("HSET", .string(ClusterBan.hashKey), .string(ban.field), .string(ban.value)))
                case .lifted(let kind, let key):
                    commands.append(RedisCommand("HDEL", .string(ClusterBan.hashKey), .string(ClusterBan.field(kind: kind, key: key))))
                }
            }
            commands.append(RedisCommand("INCR", .string(ClusterBan.versionKey)))
            do {
                let replies = try await client.pipeline(commands)
                if let failure = replies.first(where: { if case .error = $0 { return true } else { return false } }) {
                    throw RedisError.server("\(failure)")
                }
            } catch {
                logger.debug("bans not shared; kept for the next round", metadata: ["changes": "\(changes.count)", "error": "\(error)"])
                abuse.restoreBanChanges(changes)
                return false
            }
        }
        do {
            let version = try await client.send(RedisCommand("GET", .string(ClusterBan.versionKey))).int ?? 0
            guard version != abuse.sharedBansVersion else {
                return true
            }
            let entries = try await client.send(RedisCommand("HGETALL", .string(ClusterBan.hashKey))).array ?? []
            var bans: [ClusterBan] = []
            var lapsed: [RedisArgument] = []
            var index = 0
            while index + 1 < entries.count {
                if let field = entries[index].string, let value = entries[index + 1].string, let ban = ClusterBan(field: field, value: value) {
                    if ban.until > nowWall {
                        bans.append(ban)
                    } else {
                        lapsed.append(.string(field))
                    }
                }
                index += 2
            }
            abuse.applySharedBans(bans, version: version, nowWall: nowWall, now: .now())
            if !lapsed.isEmpty {
                _ = try? await client.send(RedisCommand("HDEL", arguments: [.string(ClusterBan.hashKey)] + lapsed))
            }
            return true
        } catch {
            logger.debug("shared bans not read", metadata: ["error": "\(error)"])
            return false
        }
    }
}

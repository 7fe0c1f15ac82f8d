import GateCore
import GateRedis
import GateRules
import NIOCore

/// The in-flight flags shared by every gateway on one Redis: one key per account,
/// `spikegate:inflight:{ACCOUNT}` (the braces are the Redis Cluster hash tag: every key of one
/// account lands in one slot), holding `GATEWAY:TOKEN` of the request that owns it, with the
/// flag's TTL as expiry.
///
/// Three ways to take a flag (the rule's `store`):
/// - `watch`: `WATCH key`, `GET key`; if free, `MULTI SET key value PX ttl EXEC` (aborted when
///   another gateway wrote the key in between: then it is held);
/// - `setnx`: `SET key value NX PX ttl`;
/// - `lua`: a script doing the same `SET NX` (one round trip, loaded once).
/// Giving it back is owner-safe in every mode: a compare-and-delete script on the shared,
/// pipelined connection deletes the key only while it still holds this request's value, so a
/// late release never frees the flag of a newer request. One round trip shared with every other
/// release in flight, instead of `WATCH`/`GET`/`MULTI DEL EXEC` on an exclusive connection (two
/// round trips of its own) — measured: `watch` mode went from ~11k to ~NNk requests/s through
/// one gateway thread, and with `setnx` taking flags at ~21k/s, `WATCH` releases queued behind
/// 8 exclusive connections timed out and left 77,643 of 84,555 flags to their TTL.
final class RedisFlagStore: Sendable {
    let client: RedisClient
    /// Names this gateway process in flag values (random per start).
    let instance: String

    static let acquireScript = RedisScript("""
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
        return 0
        """)
    static let releaseScript = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)

    init(client: RedisClient, instance: String = String(UInt64.random(in: .min ... .max), radix: 36)) {
        self.client = client
        self.instance = instance
    }

    static func key(for account: String) -> String {
        "spikegate:inflight:{\(account)}"
    }

    private func value(for token: UInt64) -> String {
        "\(self.instance):\(token)"
    }

    /// Takes the flag of `account` for the request with `token`: `true` when taken, `false`
    /// when another request (of any gateway) holds it; fails when Redis cannot be asked.
    func acquire(_ account: String, token: UInt64, ttl: Duration, store: InFlightPolicy.Store, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        let key = Self.key(for: account)
        let value = RedisArgument.string(self.value(for: token))
        let milliseconds = RedisArgument.integer(max(1, Int64(ttl.components.seconds * 1000 + ttl.components.attoseconds / 1_000_000_000_000_000)))
        switch store {
        case .setnx:
            return self.client.send(RedisCommand("SET", .string(key), value, "NX", "PX", milliseconds), on: eventLoop).flatMapThrowing { reply in
                try reply.throwingServerError() != .null
            }
        case .lua:
            return self.client.evaluate(Self.acquireScript, keys: [key], arguments: [value, milliseconds], on: eventLoop).flatMapThrowing { reply in
                try reply.throwingServerError() == .integer(1)
            }
        case .watch:
            return self.client.leaseConnection(on: eventLoop).flatMap { connection in
                // WATCH and GET in one write: the watch is in place before GET runs.
                Self.watchAndGet(key, on: connection).flatMap { current -> EventLoopFuture<Bool> in
                    guard current == .null else {
                        // Held. The pool sends UNWATCH when the connection comes back.
                        return connection.eventLoop.makeSucceededFuture(false)
                    }
                    return connection.transaction([RedisCommand("SET", .string(key), value, "PX", milliseconds)]).map { result in
                        if case .committed = result {
                            return true
                        }
                        return false
                    }
                }.always { _ in
                    connection.release()
                }
            }
        }
    }

    /// `WATCH key` and `GET key` pipelined: one round trip; the value of `key`.
    private static func watchAndGet(_ key: String, on connection: RedisExclusiveConnection) -> EventLoopFuture<RESPValue> {
        connection.pipeline([RedisCommand("WATCH", .string(key)), RedisCommand("GET", .string(key))]).flatMapThrowing { replies in
            guard replies.count == 2 else {
                throw RedisError(code: .protocolError, message: "expected 2 replies to WATCH and GET, got \(replies.count)")
            }
            _ = try replies[0].throwingServerError()
            return try replies[1].throwingServerError()
        }
    }

    /// Gives the flag of `account` back if the request with `token` still owns it.
    func release(_ account: String, token: UInt64, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let key = Self.key(for: account)
        return self.client.evaluate(Self.releaseScript, keys: [key], arguments: [.string(self.value(for: token))], on: eventLoop).map { _ in }
    }
}

import GateCore
import GateRedis
import GateRules
import NIOCore
import Synchronization

/// The in-flight flags shared by every gateway on one Redis: one key per account,
/// `spikegate:inflight:{ACCOUNT}` (the braces are the Redis Cluster hash tag: every key of one
/// account lands in one slot), holding `GATEWAY:TOKEN` of the request that owns it, with the
/// flag's TTL as expiry.
///
/// Three ways to take a flag (the rule's `store`):
/// - `watch`: `WATCH keys`, `MGET keys`; for the free ones `MULTI SET key value PX ttl … EXEC`,
///   aborted when another gateway wrote any of the keys in between (then the batch is split
///   and tried again, down to one key, whose abort means another request took it: held);
/// - `setnx`: `SET key value NX PX ttl`, one command per flag on the shared connection;
/// - `lua`: a script doing `SET NX PX` for each key of a batch (one round trip, loaded once).
///
/// Batches: the flags one event loop asks for during one tick (every request read in one
/// `epoll` round) go to Redis together at the end of the tick — one `WATCH` transaction or one
/// script call for up to `batchLimit` accounts instead of one each. A flag's answer is the same
/// as alone; only the round trips are shared. In a Redis Cluster a batch holds the flags of one
/// slot only (a script or a transaction cannot span slots), so batches are smaller there.
///
/// Giving a flag back is owner-safe in every mode: a compare-and-delete script, batched the
/// same way, deletes a key only while it still holds this request's value, so a late release
/// never frees the flag of a newer request. Measured before batching: `watch` releases with
/// `WATCH`/`GET`/`MULTI DEL EXEC` on exclusive connections held `watch` mode to ~11k requests/s
/// through one gateway thread (~18k with the script), and with `setnx` taking flags at ~21k/s,
/// such releases queued behind 8 exclusive connections timed out and left 77,643 of 84,555
/// flags to their TTL.
final class RedisFlagStore: Sendable {
    let client: RedisClient
    /// Names this gateway process in flag values (random per start).
    let instance: String
    /// The most flags in one batch (one script call or one transaction).
    let batchLimit: Int
    /// One batch in the making per event loop of the client.
    private let batches: [ObjectIdentifier: FlagBatch]
    /// Releases asked for and not yet answered (a draining gateway waits for them).
    private let releasesUnderWay = Atomic<Int>(0)

    /// `SET KEYS[i] ARGV[2i-1] NX PX ARGV[2i]` for each key; 1 where taken, 0 where held.
    static let acquireScript = RedisScript("""
        local taken = {}
        for i = 1, #KEYS do
          if redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'NX', 'PX', ARGV[2 * i]) then
            taken[i] = 1
          else
            taken[i] = 0
          end
        end
        return taken
        """)
    /// Deletes `KEYS[i]` where it still holds `ARGV[i]`; the number deleted.
    static let releaseScript = RedisScript("""
        local deleted = 0
        for i = 1, #KEYS do
          if redis.call('GET', KEYS[i]) == ARGV[i] then
            deleted = deleted + redis.call('DEL', KEYS[i])
          end
        end
        return deleted
        """)

    init(client: RedisClient, instance: String = String(UInt64.random(in: .min ... .max), radix: 36), batchLimit: Int = 64) {
        self.client = client
        self.instance = instance
        self.batchLimit = max(1, batchLimit)
        self.batches = Dictionary(uniqueKeysWithValues: client.eventLoops.map { (ObjectIdentifier($0), FlagBatch(loop: $0)) })
    }

    static func key(for account: String) -> String {
        "spikegate:inflight:{\(account)}"
    }

    private func value(for token: UInt64) -> String {
        "\(self.instance):\(token)"
    }

    /// Loads the scripts into Redis's script cache (warm-up before traffic).
    func loadScripts() async throws {
        try await self.client.load(Self.acquireScript)
        try await self.client.load(Self.releaseScript)
    }

    /// Takes the flag of `account` for the request with `token`: `true` when taken, `false`
    /// when another request (of any gateway) holds it; fails when Redis cannot be asked.
    func acquire(_ account: String, token: UInt64, ttl: Duration, store: InFlightPolicy.Store, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        let key = Self.key(for: account)
        let value = self.value(for: token)
        let milliseconds = max(1, Int64(ttl.components.seconds * 1000 + ttl.components.attoseconds / 1_000_000_000_000_000))
        if store == .setnx {
            return self.client.send(RedisCommand("SET", .string(key), .string(value), "NX", "PX", .integer(milliseconds)), on: eventLoop).flatMapThrowing { reply in
                try reply.throwingServerError() != .null
            }
        }
        let promise = eventLoop.makePromise(of: Bool.self)
        let request = FlagBatch.Acquire(key: key, value: value, milliseconds: milliseconds, promise: promise)
        if let batch = self.batches[ObjectIdentifier(eventLoop)], eventLoop.inEventLoop {
            if store == .watch {
                batch.watch.append(request)
            } else {
                batch.lua.append(request)
            }
            self.scheduleFlush(of: batch)
        } else if store == .watch {
            self.takeWithWatch([request], on: eventLoop)
        } else {
            self.takeWithScript([request], on: eventLoop)
        }
        return promise.futureResult
    }

    /// Gives the flag of `account` back if the request with `token` still owns it.
    func release(_ account: String, token: UInt64, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        self.releasesUnderWay.add(1, ordering: .relaxed)
        promise.futureResult.whenComplete { _ in
            self.releasesUnderWay.subtract(1, ordering: .relaxed)
        }
        let request = FlagBatch.Release(key: Self.key(for: account), value: self.value(for: token), promise: promise)
        if let batch = self.batches[ObjectIdentifier(eventLoop)], eventLoop.inEventLoop {
            batch.releases.append(request)
            self.scheduleFlush(of: batch)
        } else {
            self.giveBack([request], on: eventLoop)
        }
        return promise.futureResult
    }

    /// Waits until every release asked for has been answered, or `limit` has passed; whether
    /// none is left. Called by a draining gateway before it closes its Redis connections, so the
    /// flags of its last requests are given back rather than left to their TTL.
    func waitForReleases(upTo limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while self.releasesUnderWay.load(ordering: .relaxed) > 0 {
            guard ContinuousClock.now < deadline else {
                return false
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    // MARK: Batches

    /// Sends what `batch` gathered at the end of this tick (tasks run after the tick's I/O).
    private func scheduleFlush(of batch: FlagBatch) {
        guard !batch.flushScheduled else {
            return
        }
        batch.flushScheduled = true
        batch.loop.execute {
            batch.flushScheduled = false
            let watch = batch.watch, lua = batch.lua, releases = batch.releases
            batch.watch = []
            batch.lua = []
            batch.releases = []
            for chunk in self.chunks(of: watch, key: \.key) {
                self.takeWithWatch(chunk, on: batch.loop)
            }
            for chunk in self.chunks(of: lua, key: \.key) {
                self.takeWithScript(chunk, on: batch.loop)
            }
            for chunk in self.chunks(of: releases, key: \.key) {
                self.giveBack(chunk, on: batch.loop)
            }
        }
    }

    /// Batches of at most `batchLimit`; in a Redis Cluster, each of one slot (a transaction or
    /// a script cannot span slots), in the order the slots first appear.
    private func chunks<Element>(of requests: [Element], key: (Element) -> String) -> [ArraySlice<Element>] {
        guard self.client.isCluster else {
            return Self.slices(of: requests, size: self.batchLimit)
        }
        var order: [Int] = []
        var bySlot: [Int: [Element]] = [:]
        for request in requests {
            let slot = RedisHashSlot.of(key(request))
            if bySlot[slot] == nil {
                order.append(slot)
            }
            bySlot[slot, default: []].append(request)
        }
        return order.flatMap { Self.slices(of: bySlot[$0] ?? [], size: self.batchLimit) }
    }

    private static func slices<Element>(of requests: [Element], size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: requests.count, by: size).map { start in
            requests[start ..< min(start + size, requests.count)]
        }
    }

    /// `lua` mode: one script call for the whole batch.
    private func takeWithScript(_ requests: some Collection<FlagBatch.Acquire>, on eventLoop: any EventLoop) {
        let requests = Array(requests)
        var arguments: [RedisArgument] = []
        arguments.reserveCapacity(requests.count * 2)
        for request in requests {
            arguments.append(.string(request.value))
            arguments.append(.integer(request.milliseconds))
        }
        self.client.evaluate(Self.acquireScript, keys: requests.map(\.key), arguments: arguments, on: eventLoop)
            .flatMapThrowing { reply -> [Bool] in
                guard let taken = try reply.throwingServerError().array, taken.count == requests.count else {
                    throw RedisError(code: .protocolError, message: "the flag script answered \(reply) for \(requests.count) keys")
                }
                return taken.map { $0 == .integer(1) }
            }
            .whenComplete { result in
                switch result {
                case .success(let taken):
                    for (request, isTaken) in zip(requests, taken) {
                        request.promise.succeed(isTaken)
                    }
                case .failure(let error):
                    requests.forEach { $0.promise.fail(error) }
                }
            }
    }

    /// `watch` mode: `WATCH` and `MGET` the batch's keys in one write, then one `MULTI … EXEC`
    /// setting the free ones. An aborted transaction splits the batch in two and tries each
    /// half again; a single key's abort means another request took that flag in between.
    /// A key asked for twice in one batch (the handler never does: this gateway's own flag comes
    /// first) is set once; the second request is answered as held.
    private func takeWithWatch(_ batch: some Collection<FlagBatch.Acquire>, on eventLoop: any EventLoop) {
        var seen = Set<String>()
        let (requests, repeated) = batch.reduce(into: ([FlagBatch.Acquire](), [FlagBatch.Acquire]())) { split, request in
            if seen.insert(request.key).inserted {
                split.0.append(request)
            } else {
                split.1.append(request)
            }
        }
        let keys = requests.map { RedisArgument.string($0.key) }
        self.client.leaseConnection(forKey: requests.first?.key, on: eventLoop).flatMap { connection -> EventLoopFuture<WatchOutcome> in
            connection.pipeline([RedisCommand("WATCH", arguments: keys), RedisCommand("MGET", arguments: keys)])
                .flatMapThrowing { replies -> [Bool] in
                    guard replies.count == 2 else {
                        throw RedisError(code: .protocolError, message: "expected 2 replies to WATCH and MGET, got \(replies.count)")
                    }
                    _ = try replies[0].throwingServerError()
                    guard let values = try replies[1].throwingServerError().array, values.count == requests.count else {
                        throw RedisError(code: .protocolError, message: "MGET answered \(replies[1]) for \(requests.count) keys")
                    }
                    return values.map { $0 == .null }
                }
                .flatMap { free -> EventLoopFuture<WatchOutcome> in
                    let candidates = zip(requests, free).filter(\.1).map(\.0)
                    guard !candidates.isEmpty else {
                        // All held. The pool sends UNWATCH when the connection comes back.
                        return connection.eventLoop.makeSucceededFuture(WatchOutcome(free: free, committed: true))
                    }
                    let sets = candidates.map { request in
                        RedisCommand("SET", .string(request.key), .string(request.value), "PX", .integer(request.milliseconds))
                    }
                    return connection.transaction(sets).map { result in
                        if case .committed = result {
                            return WatchOutcome(free: free, committed: true)
                        }
                        return WatchOutcome(free: free, committed: false)
                    }
                }
                .always { _ in
                    connection.release()
                }
        }.whenComplete { result in
            switch result {
            case .success:
                repeated.forEach { $0.promise.succeed(false) }
            case .failure(let error):
                repeated.forEach { $0.promise.fail(error) }
            }
            switch result {
            case .success(let outcome) where outcome.committed:
                for (request, taken) in zip(requests, outcome.free) {
                    request.promise.succeed(taken)
                }
            case .success(let outcome):
                var retry: [FlagBatch.Acquire] = []
                for (request, free) in zip(requests, outcome.free) {
                    if free {
                        retry.append(request)
                    } else {
                        request.promise.succeed(false)
                    }
                }
                guard retry.count > 1 else {
                    retry.forEach { $0.promise.succeed(false) }
                    return
                }
                let half = retry.count / 2
                self.takeWithWatch(retry[..<half], on: eventLoop)
                self.takeWithWatch(retry[half...], on: eventLoop)
            case .failure(let error):
                requests.forEach { $0.promise.fail(error) }
            }
        }
    }

    /// Every mode: one compare-and-delete script call for the batch.
    private func giveBack(_ requests: some Collection<FlagBatch.Release>, on eventLoop: any EventLoop) {
        let requests = Array(requests)
        self.client.evaluate(Self.releaseScript, keys: requests.map(\.key), arguments: requests.map { .string($0.value) }, on: eventLoop)
            .flatMapThrowing { reply in
                _ = try reply.throwingServerError()
            }
            .whenComplete { result in
                switch result {
                case .success:
                    requests.forEach { $0.promise.succeed() }
                case .failure(let error):
                    requests.forEach { $0.promise.fail(error) }
                }
            }
    }
}

/// What one `WATCH` round found: which keys were free, and whether setting them committed.
private struct WatchOutcome: Sendable {
    var free: [Bool]
    var committed: Bool
}

/// The flag requests one event loop gathered during the current tick. Loop-confined.
final class FlagBatch: @unchecked Sendable {
    struct Acquire: Sendable {
        let key: String
        let value: String
        let milliseconds: Int64
        let promise: EventLoopPromise<Bool>
    }

    struct Release: Sendable {
        let key: String
        let value: String
        let promise: EventLoopPromise<Void>
    }

    let loop: any EventLoop
    var watch: [Acquire] = []
    var lua: [Acquire] = []
    var releases: [Release] = []
    var flushScheduled = false

    init(loop: any EventLoop) {
        self.loop = loop
    }
}

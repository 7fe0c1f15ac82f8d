import GateCore
import Logging
import NIOCore
import NIOPosix

/// An asynchronous Redis client on SwiftNIO, built for a gateway's hot path.
///
/// - Stateless commands go over one multiplexed connection per event loop: callers on that loop
///   never take a lock or hop threads, and everything sent in one tick leaves in one write.
/// - Sequences that need a connection of their own (`WATCH` … `EXEC`) lease one from a bounded
///   per-loop pool with `withConnection` / `leaseConnection`.
/// - Every command has a deadline (`commandTimeout`); a lost connection is re-dialled with
///   back-off; a circuit breaker fails commands at once while Redis is down.
/// - Every failure is a `RedisError` with a `code`.
///
/// Future-returning methods suit NIO handlers (pass the handler's event loop); the `async` ones
/// suit everything else. Call `shutdown()` before the event loop group goes away.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    private let group: any EventLoopGroup
    private let nodes: [RedisNode]
    private let nodesByLoop: [ObjectIdentifier: RedisNode]
    /// Routing by slot, when the configuration names a Redis Cluster (the per-loop `nodes`
    /// then only pick the loop).
    private let cluster: RedisCluster?
    /// Whether connections go to the primary Sentinel names (a `READONLY` answer then drops
    /// the connection, which is re-dialled to the new primary).
    private let followsSentinel: Bool
    /// Told how long each command (or pipeline) took and how it failed, if it did (server error
    /// replies inside a pipeline are answers, not failures), and whether it went over a leased
    /// (exclusive) connection or a shared one; also of every lease that failed (as leased).
    public typealias Observer = @Sendable (_ duration: Duration, _ failure: RedisError?, _ leased: Bool) -> Void
    private let observer: Observer?

    /// Creates a client whose connections live on `eventLoopGroup`; nothing is dialled until
    /// `connect()` or the first command. `observer` (metrics) hears of every command.
    ///
    /// With a `cluster` topology the client routes each command by its key's slot (see
    /// `RedisCluster`); a cluster topology with a seed that is not a TCP address is a
    /// programming error here (`RedisConfiguration(url:)` only makes TCP seeds).
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger = Logger(label: "spikegate.redis"),
        observer: Observer? = nil
    ) {
        self.configuration = configuration
        self.observer = observer
        self.group = eventLoopGroup
        var sentinel: RedisSentinel?
        if case .sentinel(let sentinels, let primaryName) = configuration.topology {
            sentinel = RedisSentinel(sentinels: sentinels, primaryName: primaryName, logger: logger)
        }
        self.followsSentinel = sentinel != nil
        let nodes = eventLoopGroup.makeIterator().map { [sentinel] loop in
            RedisNode(eventLoop: loop, configuration: configuration, logger: logger, sentinel: sentinel)
        }
        self.nodes = nodes
        self.nodesByLoop = Dictionary(uniqueKeysWithValues: nodes.map { (ObjectIdentifier($0.eventLoop), $0) })
        if case .cluster(let seeds) = configuration.topology {
            do {
                self.cluster = try RedisCluster(seeds: seeds, configuration: configuration, loops: nodes.map(\.eventLoop), logger: logger)
            } catch {
                preconditionFailure("\(error)")
            }
        } else {
            self.cluster = nil
        }
    }

    /// Whether the client speaks Redis Cluster (multi-key commands must then keep to one slot).
    public var isCluster: Bool {
        self.cluster != nil
    }

    /// The cluster's slot map as the client knows it (`nil` outside a cluster).
    public var clusterSlotMap: RedisSlotMap? {
        self.cluster?.slotMap
    }

    /// The event loops the client has a shared connection and a pool on, one node each.
    public var eventLoops: [any EventLoop] {
        self.nodes.map(\.eventLoop)
    }

    /// The node of `eventLoop` if it belongs to the group, else the group's next loop's.
    private func node(for eventLoop: (any EventLoop)?) -> RedisNode {
        if let eventLoop, let node = self.nodesByLoop[ObjectIdentifier(eventLoop)] {
            return node
        }
        let loop = self.group.any()
        return self.nodesByLoop[ObjectIdentifier(loop)] ?? self.nodes[0]
    }

    private func deadline() -> NIODeadline {
        NIODeadline.now() + self.configuration.commandTimeout.timeAmount
    }

    // MARK: Stateless commands

    /// Sends `command` on the shared connection of `eventLoop` (the current loop when `nil`).
    ///
    /// The future completes on that loop with the reply; a server error reply fails it with
    /// `serverError`. Commands that change or block their connection (`MULTI`, `WATCH`,
    /// `SELECT`, `SUBSCRIBE`, `BLPOP`, …) fail with `unsupportedCommand`: they belong in
    /// `withConnection`.
    public func send(_ command: RedisCommand, on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<RESPValue> {
        let node = self.node(for: eventLoop)
        if let refusal = command.sharedConnectionRefusal {
            return node.eventLoop.makeFailedFuture(refusal)
        }
        if let cluster = self.cluster {
            return Self.observe(cluster.send(command, slot: command.slot, on: node.eventLoop), by: self.observer, leased: false)
        }
        let promise = node.eventLoop.makePromise(of: RESPValue.self)
        let request = RedisRequest(payload: .single(command, promise), deadline: self.deadline())
        if node.eventLoop.inEventLoop {
            node.send(request)
        } else {
            node.eventLoop.execute { node.send(request) }
        }
        if self.followsSentinel {
            promise.futureResult.whenFailure { error in
                if (error as? RedisError)?.serverErrorPrefix == "READONLY" {
                    node.dropShared()
                }
            }
        }
        return Self.observe(promise.futureResult, by: self.observer, leased: false)
    }

    /// Reports `future`'s time and failure to `observer`, if there is one; returns `future`.
    @discardableResult
    static func observe<Value>(_ future: EventLoopFuture<Value>, by observer: Observer?, leased: Bool) -> EventLoopFuture<Value> {
        guard let observer else {
            return future
        }
        let start = ContinuousClock.now
        future.whenComplete { result in
            switch result {
            case .success:
                observer(ContinuousClock.now - start, nil, leased)
            case .failure(let error):
                observer(ContinuousClock.now - start, error as? RedisError ?? RedisError(code: .protocolError, message: "\(error)"), leased)
            }
        }
        return future
    }

    /// Sends `commands` back to back on one shared connection; the replies come back in order,
    /// server errors in place as `RESPValue.error`. One deadline covers the whole batch.
    public func pipeline(_ commands: [RedisCommand], on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<[RESPValue]> {
        let node = self.node(for: eventLoop)
        if commands.isEmpty {
            // Nothing to send; answering here also keeps it from passing for a breaker probe.
            return node.eventLoop.makeSucceededFuture([])
        }
        for command in commands {
            if let refusal = command.sharedConnectionRefusal {
                return node.eventLoop.makeFailedFuture(refusal)
            }
        }
        if let cluster = self.cluster {
            return Self.observe(cluster.pipeline(commands, on: node.eventLoop), by: self.observer, leased: false)
        }
        let promise = node.eventLoop.makePromise(of: [RESPValue].self)
        let request = RedisRequest(payload: .batch(commands, promise), deadline: self.deadline())
        if node.eventLoop.inEventLoop {
            node.send(request)
        } else {
            node.eventLoop.execute { node.send(request) }
        }
        if self.followsSentinel {
            promise.futureResult.whenSuccess { replies in
                if replies.contains(where: { if case .error(let message) = $0 { message.hasPrefix("READONLY") } else { false } }) {
                    node.dropShared()
                }
            }
        }
        return Self.observe(promise.futureResult, by: self.observer, leased: false)
    }

    /// Runs `script` with `EVALSHA` (loading it on `NOSCRIPT`) on the shared connection.
    public func evaluate(
        _ script: RedisScript,
        keys: [String] = [],
        arguments: [RedisArgument] = [],
        on eventLoop: (any EventLoop)? = nil
    ) -> EventLoopFuture<RESPValue> {
        let loop = self.node(for: eventLoop).eventLoop
        if let cluster = self.cluster {
            return Self.observe(cluster.evaluate(script, keys: keys, arguments: arguments, on: loop), by: self.observer, leased: false)
        }
        return script.evaluate(keys: keys, arguments: arguments) { command in
            self.send(command, on: loop)
        }
    }

    /// Loads `script` into Redis's script cache now (warm-up), so the first purchase needs no load.
    /// In a cluster, on every primary.
    public func load(_ script: RedisScript, on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<Void> {
        if let cluster = self.cluster {
            return cluster.load(script, on: self.node(for: eventLoop).eventLoop)
        }
        let expected = script.sha1
        return self.send(script.loadCommand, on: eventLoop).flatMapThrowing { reply in
            guard reply.string == expected else {
                throw RedisError(code: .protocolError, message: "SCRIPT LOAD answered \(reply), expected the SHA-1 \(expected)")
            }
        }
    }

    // MARK: Exclusive connections

    /// Leases an exclusive connection on `eventLoop`'s pool; call `release()` when done.
    ///
    /// Fails with `poolExhausted` when every connection stays busy for `acquireTimeout`, and with
    /// `circuitOpen` at once while Redis is down.
    ///
    /// In a Redis Cluster the connection goes to the primary serving `key`'s slot (any primary
    /// without a key): every key of the transaction must share that slot.
    public func leaseConnection(forKey key: String? = nil, on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<RedisExclusiveConnection> {
        let node = self.node(for: eventLoop)
        let deadline = NIODeadline.now() + self.configuration.acquireTimeout.timeAmount
        let leased: EventLoopFuture<RedisExclusiveConnection>
        if let cluster = self.cluster {
            leased = cluster.lease(slot: key.map(RedisHashSlot.of), on: node.eventLoop, deadline: deadline)
        } else {
            leased = node.eventLoop.inEventLoop ? node.lease(deadline: deadline) : node.eventLoop.flatSubmit { node.lease(deadline: deadline) }
        }
        guard let observer = self.observer else {
            return leased
        }
        // A lease that fails is a failed command to the observer (Redis down, pool exhausted);
        // a lease granted reports its commands.
        let start = ContinuousClock.now
        leased.whenFailure { error in
            observer(ContinuousClock.now - start, error as? RedisError ?? RedisError(code: .protocolError, message: "\(error)"), true)
        }
        return leased.map { connection in
            connection.observer = observer
            return connection
        }
    }

    /// Runs `body` with an exclusive connection and hands it back afterwards, even on error —
    /// reset with `UNWATCH`/`DISCARD` if `body` left a transaction open.
    public func withConnection<Result: Sendable>(
        forKey key: String? = nil,
        _ body: (RedisExclusiveConnection) async throws -> Result
    ) async throws -> Result {
        let connection = try await self.leaseConnection(forKey: key).get()
        do {
            let result = try await body(connection)
            connection.release()
            return result
        } catch {
            connection.release()
            throw error
        }
    }

    // MARK: Lifecycle

    /// Dials the shared connection of every event loop and waits until each answers `PING`.
    ///
    /// Throws the first failure (for example `connectionRefused` when Redis is not there); the
    /// client keeps re-dialling in the background either way.
    /// In a cluster: reads the slot map, then dials every primary on every loop.
    public func connect() async throws {
        if let cluster = self.cluster {
            try await cluster.connect()
            return
        }
        for node in self.nodes {
            _ = try await node.eventLoop.flatSubmit { () -> EventLoopFuture<RESPValue> in
                node.start()
                return self.send(RedisCommand("PING"), on: node.eventLoop)
            }.get()
        }
    }

    /// The circuit breaker's phase on each event loop, for readiness and metrics.
    public func circuitPhases() async -> [CircuitBreaker.Phase] {
        if let cluster = self.cluster {
            return await cluster.circuitPhases()
        }
        var phases: [CircuitBreaker.Phase] = []
        for node in self.nodes {
            if let phase = try? await node.eventLoop.submit({ node.circuitPhase }).get() {
                phases.append(phase)
            }
        }
        return phases
    }

    /// Closes every connection; commands still waiting fail with `shutdown`.
    public func shutdown() async {
        await self.cluster?.shutdown()
        for node in self.nodes {
            try? await node.eventLoop.flatSubmit { node.shutdown() }.get()
        }
    }
}

extension RedisClient {
    /// Async form of `send`: the reply, or a `RedisError`.
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        try await self.send(command, on: nil).get()
    }

    /// Async form of `send` taking the name and arguments: `try await redis.send("GET", "k")`.
    public func send(_ name: String, _ arguments: RedisArgument...) async throws -> RESPValue {
        try await self.send(RedisCommand(name, arguments: arguments), on: nil).get()
    }

    /// Async form of `pipeline`.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        try await self.pipeline(commands, on: nil).get()
    }

    /// Async form of `evaluate`.
    public func evaluate(_ script: RedisScript, keys: [String] = [], arguments: [RedisArgument] = []) async throws -> RESPValue {
        try await self.evaluate(script, keys: keys, arguments: arguments, on: nil).get()
    }

    /// Async form of `load`.
    public func load(_ script: RedisScript) async throws {
        try await self.load(script, on: nil).get()
    }
}

extension RedisClient {
    /// Runs `body` with a client on an event-loop group of its own (`threads` threads), and
    /// shuts both down afterwards, whether `body` returns or throws. For tools and tests; a
    /// server shares its group with the client instead.
    public static func withClient<Result: Sendable>(
        configuration: RedisConfiguration,
        threads: Int = 1,
        logger: Logger = Logger(label: "spikegate.redis"),
        _ body: (RedisClient, MultiThreadedEventLoopGroup) async throws -> Result
    ) async throws -> Result {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let client = RedisClient(configuration: configuration, eventLoopGroup: group, logger: logger)
        let result: Swift.Result<Result, any Error>
        do {
            result = .success(try await body(client, group))
        } catch {
            result = .failure(error)
        }
        await client.shutdown()
        try await group.shutdownGracefully()
        return try result.get()
    }
}

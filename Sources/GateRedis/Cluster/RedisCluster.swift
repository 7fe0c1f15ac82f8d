import GateCore
import Logging
import NIOCore
import Synchronization

/// Redis Cluster routing for a `RedisClient`: which primary serves each slot, one `RedisNode`
/// (shared connection, exclusive pool, circuit breaker) per primary on each event loop, and the
/// redirections of a cluster that changes under the client.
///
/// - A command goes to the primary of its first key's slot (`RedisCommand.slot`); a keyless one
///   to any primary. A pipeline is split by primary, sent as one batch to each, and its replies
///   put back in order.
/// - `MOVED slot node`: the map learns the new owner, a full refresh (`CLUSTER SLOTS`) is
///   scheduled, and the command goes again to the new owner. `ASK slot node` (a slot under
///   migration): the command goes once to that node, preceded by `ASKING` on the same
///   connection. `TRYAGAIN`: tried again after 10, 20, 40… ms. At most five hops per command.
/// - A node that cannot be reached also schedules a refresh (a replica may have been promoted).
///   Refreshes run one at a time, at most every 100 ms.
/// - Scripts run on the primary of their first key's slot (the script is loaded there on
///   `NOSCRIPT`); `load` loads a script on every primary.
/// - Transactions (`leaseConnection(forKey:)`) are not redirected: one that meets a moved slot
///   fails with the redirection as its error; the map is read again every 5 s (and at once when
///   a node cannot be reached), and later ones go right.
final class RedisCluster: Sendable {
    static let maximumRedirects = 5
    static let refreshInterval = Duration.milliseconds(100)

    private let seeds: [RedisSlotMap.Node]
    private let configuration: RedisConfiguration
    private let logger: Logger
    private let map = Mutex(RedisSlotMap())
    private let loops: [ObjectIdentifier: ClusterLoopNodes]
    private let firstLoop: any EventLoop
    private let refresh = Mutex(RefreshState())
    /// How often the map is read again regardless (a fail-over inside the cluster, a moved
    /// slot that only transactions met).
    static let periodicRefresh = Duration.seconds(5)

    private struct RefreshState {
        /// The refresh under way.
        var task: Task<Void, Never>?
        var last: ContinuousClock.Instant?
        var stopped = false
        var periodic: RepeatedTask?
    }

    /// Routing over `seeds` (TCP endpoints) for connections on `loops`.
    init(seeds: [RedisEndpoint], configuration: RedisConfiguration, loops: [any EventLoop], logger: Logger) throws(RedisError) {
        var nodes: [RedisSlotMap.Node] = []
        for seed in seeds {
            guard case .tcp(let host, let port) = seed else {
                throw RedisError(code: .invalidURL, message: "a Redis Cluster is reached over TCP, not \(seed)")
            }
            nodes.append(RedisSlotMap.Node(host: host, port: port))
        }
        guard !nodes.isEmpty, let first = loops.first else {
            throw RedisError(code: .invalidURL, message: "a Redis Cluster needs at least one seed node")
        }
        self.seeds = nodes
        self.configuration = configuration
        self.logger = logger
        self.firstLoop = first
        self.loops = Dictionary(uniqueKeysWithValues: loops.map { (ObjectIdentifier($0), ClusterLoopNodes(loop: $0)) })
    }

    /// The slot map as it stands (for tests and diagnostics).
    var slotMap: RedisSlotMap {
        self.map.withLock { $0 }
    }

    // MARK: Routing

    /// Where commands of `slot` go now: its primary, else any known primary, else a seed.
    private func target(forSlot slot: Int?) -> RedisSlotMap.Node {
        self.map.withLock { map in
            if let slot, let node = map.node(forSlot: slot) {
                return node
            }
            return map.nodes.first ?? self.seeds[0]
        }
    }

    /// The node for `target` on `loop`, made on first use; must be called on the loop.
    private func node(_ target: RedisSlotMap.Node, on loop: any EventLoop) -> RedisNode {
        loop.preconditionInEventLoop()
        guard let table = self.loops[ObjectIdentifier(loop)] else {
            preconditionFailure("an event loop the cluster client was not made for")
        }
        if let node = table.nodes[target] {
            return node
        }
        var configuration = self.configuration
        configuration.endpoint = .tcp(host: target.host, port: target.port)
        configuration.topology = .single
        let node = RedisNode(eventLoop: loop, configuration: configuration, logger: self.logger)
        table.nodes[target] = node
        return node
    }

    private func deadline() -> NIODeadline {
        NIODeadline.now() + self.configuration.commandTimeout.timeAmount
    }

    /// Hands `request` to `target`'s node on `loop`.
    private func submit(_ request: RedisRequest, to target: RedisSlotMap.Node, on loop: any EventLoop) {
        if loop.inEventLoop {
            self.node(target, on: loop).send(request)
        } else {
            loop.execute { self.node(target, on: loop).send(request) }
        }
    }

    // MARK: Commands

    /// Sends `command` to the primary of `slot` (any primary for `nil`), following redirections.
    func send(_ command: RedisCommand, slot: Int?, on loop: any EventLoop) -> EventLoopFuture<RESPValue> {
        self.send(command, slot: slot, to: self.target(forSlot: slot), asking: false, hops: 0, on: loop)
    }

    private func send(
        _ command: RedisCommand,
        slot: Int?,
        to target: RedisSlotMap.Node,
        asking: Bool,
        hops: Int,
        on loop: any EventLoop
    ) -> EventLoopFuture<RESPValue> {
        let answered: EventLoopFuture<RESPValue>
        if asking {
            let promise = loop.makePromise(of: [RESPValue].self)
            self.submit(RedisRequest(payload: .batch([RedisCommand("ASKING"), command], promise), deadline: self.deadline()), to: target, on: loop)
            answered = promise.futureResult.flatMapThrowing { replies in
                guard replies.count == 2 else {
                    throw RedisError(code: .protocolError, message: "expected 2 replies to ASKING and \(command.name), got \(replies.count)")
                }
                if case .error(let message) = replies[1] {
                    throw RedisError.server(message).with(command: command)
                }
                return replies[1]
            }
        } else {
            let promise = loop.makePromise(of: RESPValue.self)
            self.submit(RedisRequest(payload: .single(command, promise), deadline: self.deadline()), to: target, on: loop)
            answered = promise.futureResult
        }
        return answered.flatMapError { error in
            guard let redisError = error as? RedisError else {
                return loop.makeFailedFuture(error)
            }
            self.refreshIfUnreachable(redisError)
            guard redisError.code == .serverError, hops < Self.maximumRedirects,
                let redirect = RedisClusterRedirect(errorReply: Substring(redisError.message))
            else {
                return loop.makeFailedFuture(error)
            }
            switch redirect.naming(target) {
            case .moved(let movedSlot, let owner):
                self.map.withLock { $0.moved(slot: movedSlot, to: owner) }
                self.refreshSoon()
                return self.send(command, slot: slot, to: owner, asking: false, hops: hops + 1, on: loop)
            case .ask(_, let node):
                return self.send(command, slot: slot, to: node, asking: true, hops: hops + 1, on: loop)
            case .tryAgain:
                return loop.scheduleTask(in: .milliseconds(10 << hops)) {}.futureResult.flatMap {
                    self.send(command, slot: slot, to: self.target(forSlot: slot), asking: false, hops: hops + 1, on: loop)
                }
            }
        }
    }

    /// Sends `commands` as one batch per primary; the replies in order, server errors in place.
    /// Commands answered with a redirection go again, one by one, following it.
    func pipeline(_ commands: [RedisCommand], on loop: any EventLoop) -> EventLoopFuture<[RESPValue]> {
        var order: [RedisSlotMap.Node] = []
        var groups: [RedisSlotMap.Node: [Int]] = [:]
        for (index, command) in commands.enumerated() {
            let target = self.target(forSlot: command.slot)
            if groups[target] == nil {
                order.append(target)
            }
            groups[target, default: []].append(index)
        }
        let parts = order.map { target -> EventLoopFuture<(indices: [Int], replies: [RESPValue])> in
            let indices = groups[target] ?? []
            let promise = loop.makePromise(of: [RESPValue].self)
            self.submit(RedisRequest(payload: .batch(indices.map { commands[$0] }, promise), deadline: self.deadline()), to: target, on: loop)
            promise.futureResult.whenFailure { error in self.refreshIfUnreachable(error) }
            return promise.futureResult.map { (indices, $0) }
        }
        return EventLoopFuture.whenAllSucceed(parts, on: loop).flatMap { parts in
            var replies = [RESPValue](repeating: .null, count: commands.count)
            var redirected: [Int] = []
            for part in parts {
                for (index, reply) in zip(part.indices, part.replies) {
                    replies[index] = reply
                    if case .error(let message) = reply, RedisClusterRedirect(errorReply: Substring(message)) != nil {
                        redirected.append(index)
                    }
                }
            }
            guard !redirected.isEmpty else {
                return loop.makeSucceededFuture(replies)
            }
            let again = redirected.map { index in
                self.send(commands[index], slot: commands[index].slot, on: loop).map { (index, $0) }.flatMapErrorThrowing { error in
                    // A server error stays in place, as in any pipeline; anything else fails it.
                    guard let redisError = error as? RedisError, redisError.code == .serverError else {
                        throw error
                    }
                    return (index, RESPValue.error(redisError.message))
                }
            }
            let first = replies
            return EventLoopFuture.whenAllSucceed(again, on: loop).map { answers in
                var replies = first
                for (index, reply) in answers {
                    replies[index] = reply
                }
                return replies
            }
        }
    }

    /// Runs `script` on the primary of its first key's slot, loading it there on `NOSCRIPT`.
    ///
    /// On `NOSCRIPT` the script goes again as `EVAL` with its source (which also caches it
    /// there): the node without it may be one an `ASK` pointed to, which a `SCRIPT LOAD` sent
    /// by slot would never reach.
    func evaluate(_ script: RedisScript, keys: [String], arguments: [RedisArgument], on loop: any EventLoop) -> EventLoopFuture<RESPValue> {
        let slot = keys.first.map(RedisHashSlot.of)
        return self.send(script.evalCommand(keys: keys, arguments: arguments), slot: slot, on: loop).flatMapError { error in
            guard (error as? RedisError)?.serverErrorPrefix == "NOSCRIPT" else {
                return loop.makeFailedFuture(error)
            }
            let eval = RedisCommand("EVAL", arguments: [.string(script.source), .integer(Int64(keys.count))] + keys.map { .string($0) } + arguments)
            return self.send(eval, slot: slot, on: loop)
        }
    }

    /// Loads `script` on every primary.
    func load(_ script: RedisScript, on loop: any EventLoop) -> EventLoopFuture<Void> {
        let expected = script.sha1
        let primaries = self.map.withLock { $0.servingNodes }
        let loads = (primaries.isEmpty ? [self.target(forSlot: nil)] : primaries).map { primary in
            self.send(script.loadCommand, slot: nil, to: primary, asking: false, hops: Self.maximumRedirects, on: loop).flatMapThrowing { reply in
                guard reply.string == expected else {
                    throw RedisError(code: .protocolError, message: "SCRIPT LOAD on \(primary) answered \(reply), expected the SHA-1 \(expected)")
                }
            }
        }
        return EventLoopFuture.andAllSucceed(loads, on: loop)
    }

    /// Leases an exclusive connection to the primary of `slot` (any primary for `nil`).
    /// Without a key there is no telling which primary the transaction's keys live on: refused.
    func lease(slot: Int?, on loop: any EventLoop, deadline: NIODeadline) -> EventLoopFuture<RedisExclusiveConnection> {
        guard let slot else {
            return loop.makeFailedFuture(RedisError(
                code: .unsupportedCommand,
                message: "in a Redis Cluster an exclusive connection needs the key it is for: use leaseConnection(forKey:) or withConnection(forKey:)"
            ))
        }
        let target = self.target(forSlot: slot)
        let leased = loop.inEventLoop ? self.node(target, on: loop).lease(deadline: deadline) : loop.flatSubmit { self.node(target, on: loop).lease(deadline: deadline) }
        leased.whenFailure { error in self.refreshIfUnreachable(error) }
        return leased
    }

    /// A node that cannot be reached may have been replaced (a replica promoted): read the map.
    private func refreshIfUnreachable(_ error: any Error) {
        if let code = (error as? RedisError)?.code, [.connectionRefused, .connectionClosed, .circuitOpen, .timeout].contains(code) {
            self.refreshSoon()
        }
    }

    // MARK: The slot map

    /// Reads the slot map from the first known primary or seed that answers `CLUSTER SLOTS`.
    func refreshMap() async throws {
        let candidates = self.map.withLock { $0.servingNodes } + self.seeds
        var failures: [String] = []
        for candidate in candidates {
            do {
                let reply = try await self.send(RedisCommand("CLUSTER", "SLOTS"), slot: nil, to: candidate, asking: false, hops: Self.maximumRedirects, on: self.firstLoop).get()
                let fresh = try Self.slotMap(from: reply, askedNode: candidate)
                let unserved = fresh.unservedSlots
                let changed = self.map.withLock { map -> Bool in
                    defer { map = fresh }
                    return map.servingNodes != fresh.servingNodes
                }
                if changed {
                    self.logger.info("redis cluster slot map", metadata: [
                        "primaries": "\(fresh.servingNodes.map(\.description).joined(separator: ","))",
                        "unserved_slots": "\(unserved)",
                    ])
                }
                return
            } catch {
                failures.append("\(candidate): \(error)")
            }
        }
        throw RedisError(code: .connectionRefused, message: "no Redis Cluster node answered CLUSTER SLOTS (\(failures.joined(separator: "; ")))")
    }

    /// Starts a refresh unless one runs or one ran within `refreshInterval`.
    private func refreshSoon() {
        let now = ContinuousClock.now
        self.refresh.withLock { state in
            guard !state.stopped, state.task == nil, state.last.map({ now - $0 >= Self.refreshInterval }) ?? true else {
                return
            }
            state.task = Task {
                do {
                    try await self.refreshMap()
                } catch {
                    self.logger.warning("redis cluster slot map not refreshed", metadata: ["error": "\(error)"])
                }
                self.refresh.withLock { state in
                    state.task = nil
                    state.last = ContinuousClock.now
                }
            }
        }
    }

    /// Reads a `CLUSTER SLOTS` reply: `[[first, last, [host, port, id…], replicas…], …]`.
    /// An empty host means the node that was asked.
    static func slotMap(from reply: RESPValue, askedNode: RedisSlotMap.Node) throws(RedisError) -> RedisSlotMap {
        func bad(_ what: String) -> RedisError {
            RedisError(code: .protocolError, message: "CLUSTER SLOTS answered \(what)")
        }
        guard let ranges = reply.array else {
            throw bad("\(reply)")
        }
        var parsed: [(first: Int, last: Int, node: RedisSlotMap.Node)] = []
        for range in ranges {
            guard let fields = range.array, fields.count >= 3, let first = fields[0].int, let last = fields[1].int,
                let primary = fields[2].array, primary.count >= 2, let port = primary[1].int
            else {
                throw bad("a range it cannot read: \(range)")
            }
            var host = primary[0].string ?? ""
            if host.isEmpty || host == "?" {
                host = askedNode.host
            }
            parsed.append((Int(first), Int(last), RedisSlotMap.Node(host: host, port: Int(port))))
        }
        guard !parsed.isEmpty else {
            throw bad("no slot at all: is the cluster created (redis-cli --cluster create)?")
        }
        return RedisSlotMap(ranges: parsed)
    }

    // MARK: Lifecycle

    /// Reads the slot map, then dials every primary on every loop and waits for its `PING`.
    func connect() async throws {
        try await self.refreshMap()
        self.refresh.withLock { state in
            guard !state.stopped, state.periodic == nil else {
                return
            }
            let every = Self.periodicRefresh.timeAmount
            state.periodic = self.firstLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
                self.refreshSoon()
            }
        }
        let primaries = self.map.withLock { $0.servingNodes }
        for table in self.loops.values {
            for primary in primaries {
                _ = try await self.send(RedisCommand("PING"), slot: nil, to: primary, asking: false, hops: Self.maximumRedirects, on: table.loop).get()
            }
        }
    }

    /// The circuit breaker of every node on every loop.
    func circuitPhases() async -> [CircuitBreaker.Phase] {
        var phases: [CircuitBreaker.Phase] = []
        for table in self.loops.values {
            if let some = try? await table.loop.submit({ table.nodes.values.map(\.circuitPhase) }).get() {
                phases += some
            }
        }
        return phases
    }

    /// Closes every node's connections.
    func shutdown() async {
        let (periodic, refreshing) = self.refresh.withLock { state -> (RepeatedTask?, Task<Void, Never>?) in
            state.stopped = true
            defer { state.periodic = nil }
            return (state.periodic, state.task)
        }
        periodic?.cancel()
        // A refresh under way finishes first: it may still dial a node.
        await refreshing?.value
        for table in self.loops.values {
            try? await table.loop.flatSubmit {
                EventLoopFuture.andAllComplete(table.nodes.values.map { $0.shutdown() }, on: table.loop)
            }.get()
        }
    }
}

/// The cluster's nodes on one event loop, by primary. Touched on that loop only, hence
/// `@unchecked Sendable`.
final class ClusterLoopNodes: @unchecked Sendable {
    let loop: any EventLoop
    var nodes: [RedisSlotMap.Node: RedisNode] = [:]

    init(loop: any EventLoop) {
        self.loop = loop
    }
}

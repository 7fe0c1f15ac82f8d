import NIOCore

/// The outcome of `EXEC`.
public enum RedisTransactionResult: Sendable, Hashable {
    /// The transaction ran; one reply per queued command (errors in place as `.error`).
    case committed([RESPValue])
    /// A watched key changed after `WATCH`: nothing ran. Not an error — the caller lost a race.
    case aborted
}

/// A connection leased from the pool for commands that need one connection to themselves:
/// `WATCH` … `MULTI` … `EXEC`, or anything that sets per-connection state.
///
/// Valid until `release()` (which `RedisClient.withConnection` calls for you). It remembers
/// whether a `WATCH` or `MULTI` is open, so a connection handed back mid-transaction is reset
/// with `UNWATCH` or `DISCARD` before anyone else gets it. One whose command timed out (its
/// state on the server is unknown) or that ran a command changing per-connection state
/// (`SELECT`, `CLIENT SETNAME`, `SUBSCRIBE`, `HELLO`, …) is closed instead of reused.
///
/// Methods may be called from any thread; they hop to the connection's event loop.
public final class RedisExclusiveConnection: @unchecked Sendable {
    /// What has to be undone before the connection can serve someone else.
    enum PendingReset {
        case none
        case unwatch
        case discard
        case close
    }

    private let connection: RedisConnection
    private let node: RedisNode
    // Loop-confined.
    private var watching = false
    private var inMulti = false
    private var changedSession = false
    private var released = false
    /// The breaker is half-open and this lease is its probe: report the first command's fate.
    private var reportsProbe: Bool
    /// Told of every command and pipeline sent on this lease (set by the client when leased).
    var observer: RedisClient.Observer?

    /// The event loop the connection lives on; futures complete there.
    public var eventLoop: any EventLoop {
        self.connection.eventLoop
    }

    init(connection: RedisConnection, node: RedisNode, reportsProbe: Bool) {
        self.connection = connection
        self.node = node
        self.reportsProbe = reportsProbe
    }

    /// Sends one command; a server error reply fails the future.
    ///
    /// `timeout` replaces the configured `commandTimeout` for this command: give a blocking
    /// command (`BLPOP q 5`, `WAIT 1 100`) more than its own block time, or it times out first
    /// (and the timeout counts against the circuit breaker).
    public func send(_ command: RedisCommand, timeout: Duration? = nil) -> EventLoopFuture<RESPValue> {
        self.onLoop { () -> EventLoopFuture<RESPValue> in
            if self.released {
                return self.eventLoop.makeFailedFuture(RedisError(
                    code: .connectionClosed,
                    message: "this exclusive connection was already handed back to the pool",
                    command: command.description
                ))
            }
            self.track(command)
            return RedisClient.observe(self.reportingProbe(self.connection.send(command, deadline: self.deadline(timeout))), by: self.observer, leased: true)
        }
    }

    /// Sends several commands back to back; replies in order, server errors in place.
    public func pipeline(_ commands: [RedisCommand]) -> EventLoopFuture<[RESPValue]> {
        self.onLoop { () -> EventLoopFuture<[RESPValue]> in
            if self.released {
                return self.eventLoop.makeFailedFuture(RedisError(
                    code: .connectionClosed,
                    message: "this exclusive connection was already handed back to the pool"
                ))
            }
            commands.forEach(self.track)
            return RedisClient.observe(self.reportingProbe(self.connection.send(batch: commands, deadline: self.deadline(nil))), by: self.observer, leased: true)
        }
    }

    /// `WATCH keys…`: `EXEC` will abort if any of them changes before it.
    public func watch(_ keys: [String]) -> EventLoopFuture<Void> {
        self.send(RedisCommand("WATCH", arguments: keys.map { .string($0) })).map { _ in }
    }

    /// `UNWATCH`: forgets every watched key.
    public func unwatch() -> EventLoopFuture<Void> {
        self.send(RedisCommand("UNWATCH")).map { _ in }
    }

    /// `MULTI`: starts queueing commands.
    public func multi() -> EventLoopFuture<Void> {
        self.send(RedisCommand("MULTI")).map { _ in }
    }

    /// `EXEC`: runs the queued commands, or reports `.aborted` when a watched key changed.
    public func exec() -> EventLoopFuture<RedisTransactionResult> {
        self.send(RedisCommand("EXEC")).flatMapThrowing { reply in
            try Self.transactionResult(reply)
        }
    }

    /// `DISCARD`: drops the queued commands and every watch.
    public func discard() -> EventLoopFuture<Void> {
        self.send(RedisCommand("DISCARD")).map { _ in }
    }

    /// `MULTI`, `commands…`, `EXEC` in one write (one round trip), honouring earlier `WATCH`es.
    ///
    /// A command Redis refuses to queue (a syntax error) makes `EXEC` fail with `EXECABORT`,
    /// thrown as a server error naming the refused command; a changed watched key gives `.aborted`.
    public func transaction(_ commands: [RedisCommand]) -> EventLoopFuture<RedisTransactionResult> {
        let all = [RedisCommand("MULTI")] + commands + [RedisCommand("EXEC")]
        return self.pipeline(all).flatMapThrowing { replies in
            for (index, reply) in replies.dropLast().enumerated() {
                if case .error(let message) = reply {
                    throw RedisError(code: .serverError, message: message, command: all[index].description)
                }
            }
            guard let last = replies.last else {
                throw RedisError(code: .protocolError, message: "no reply to EXEC")
            }
            return try Self.transactionResult(last)
        }
    }

    /// Runs `script` with `EVALSHA`, loading it first if Redis does not know it (`NOSCRIPT`).
    public func evaluate(_ script: RedisScript, keys: [String] = [], arguments: [RedisArgument] = []) -> EventLoopFuture<RESPValue> {
        script.evaluate(keys: keys, arguments: arguments) { command in self.send(command) }
    }

    /// Hands the connection back to the pool. Safe to call more than once.
    public func release() {
        self.onLoop { () -> EventLoopFuture<Void> in
            if !self.released {
                self.released = true
                let reset: PendingReset
                if self.changedSession {
                    reset = .close
                } else if self.inMulti {
                    reset = .discard
                } else if self.watching {
                    reset = .unwatch
                } else {
                    reset = .none
                }
                self.node.release(self.connection, reset: reset)
            }
            return self.eventLoop.makeSucceededVoidFuture()
        }.whenComplete { _ in }
    }

    /// Notes what `command` leaves open on the server, erring towards "open": a flag is set
    /// when the command is sent and cleared only by a command that surely clears it.
    private func track(_ command: RedisCommand) {
        switch command.connectionEffect {
        case .none, .blocking:
            break
        case .session:
            self.changedSession = true
        case .transaction:
            switch command.name {
            case "WATCH":
                self.watching = true
            case "MULTI":
                self.inMulti = true
            case "EXEC", "DISCARD":
                // Outside MULTI these fail and leave any WATCH in place.
                if self.inMulti {
                    self.inMulti = false
                    self.watching = false
                }
            case "UNWATCH":
                self.watching = false
            default:
                break
            }
        }
    }

    private func reportingProbe<Value>(_ future: EventLoopFuture<Value>) -> EventLoopFuture<Value> {
        guard self.reportsProbe else {
            return future
        }
        self.reportsProbe = false
        let node = self.node
        future.whenComplete { result in
            node.probeFinished(answered: RedisRequest.answered(result))
        }
        return future
    }

    private func deadline(_ timeout: Duration?) -> NIODeadline {
        NIODeadline.now() + (timeout ?? self.node.configuration.commandTimeout).timeAmount
    }

    private func onLoop<Value: Sendable>(_ body: @escaping @Sendable () -> EventLoopFuture<Value>) -> EventLoopFuture<Value> {
        if self.eventLoop.inEventLoop {
            return body()
        }
        return self.eventLoop.flatSubmit(body)
    }

    static func transactionResult(_ reply: RESPValue) throws(RedisError) -> RedisTransactionResult {
        switch reply {
        case .null:
            return .aborted
        case .array(let replies):
            return .committed(replies)
        case .error(let message):
            throw RedisError(code: .serverError, message: message, command: "EXEC")
        default:
            throw RedisError(code: .protocolError, message: "EXEC answered \(reply), neither an array nor null")
        }
    }
}

extension RedisExclusiveConnection {
    /// Async form of `send`.
    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RESPValue {
        try await self.send(command, timeout: timeout).get()
    }

    /// Async form of `watch`.
    public func watch(_ keys: String...) async throws {
        try await self.watch(keys).get()
    }

    /// Async form of `unwatch`.
    public func unwatch() async throws {
        try await self.unwatch().get()
    }

    /// Async form of `multi`.
    public func multi() async throws {
        try await self.multi().get()
    }

    /// Async form of `exec`.
    public func exec() async throws -> RedisTransactionResult {
        try await self.exec().get()
    }

    /// Async form of `discard`.
    public func discard() async throws {
        try await self.discard().get()
    }

    /// Async form of `transaction`.
    public func transaction(_ commands: [RedisCommand]) async throws -> RedisTransactionResult {
        try await self.transaction(commands).get()
    }

    /// Async form of `evaluate`.
    public func evaluate(_ script: RedisScript, keys: [String] = [], arguments: [RedisArgument] = []) async throws -> RESPValue {
        try await self.evaluate(script, keys: keys, arguments: arguments).get()
    }
}

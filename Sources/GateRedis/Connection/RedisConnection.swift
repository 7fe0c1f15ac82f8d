import NIOCore
import NIOPosix

/// One TCP or unix-socket connection to Redis, past its `AUTH`/`SELECT` handshake.
///
/// Every method must be called on `eventLoop`; the class is `Sendable` only so that futures and
/// the pool can carry it between callbacks that all run on that loop.
///
/// Writes are flushed once per event-loop tick: a send schedules one flush, and every command
/// written before that flush runs leaves with it, so concurrent callers pipeline for free.
final class RedisConnection: @unchecked Sendable {
    let channel: any Channel
    let endpoint: RedisEndpoint
    private let handler: RedisChannelHandler
    private var flushScheduled = false

    var eventLoop: any EventLoop {
        self.channel.eventLoop
    }

    /// Whether the socket is still open.
    var isActive: Bool {
        self.channel.isActive
    }

    /// Whether a command on this connection timed out (its server-side effect is unknown).
    var hasTimedOut: Bool {
        self.eventLoop.preconditionInEventLoop()
        return self.handler.hasTimedOut
    }

    var closeFuture: EventLoopFuture<Void> {
        self.channel.closeFuture
    }

    private init(channel: any Channel, handler: RedisChannelHandler, endpoint: RedisEndpoint) {
        self.channel = channel
        self.handler = handler
        self.endpoint = endpoint
    }

    /// Dials `configuration.endpoint` on `eventLoop` and runs the handshake.
    ///
    /// Fails with `connectionRefused` when nothing answers in `connectTimeout` or Redis refuses
    /// `AUTH`/`SELECT` (its message included), so callers can back off.
    static func connect(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        observer: (any RedisConnectionObserver)?
    ) -> EventLoopFuture<RedisConnection> {
        let endpoint = configuration.endpoint
        let maximumReplyBytes = configuration.maximumReplyBytes
        let silenceLimit = configuration.silentPeerTimeout.timeAmount
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout.timeAmount)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = RedisChannelHandler(
                        peer: endpoint.description,
                        maximumReplyBytes: maximumReplyBytes,
                        silenceLimit: silenceLimit
                    )
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let connected: EventLoopFuture<any Channel>
        switch endpoint {
        case .tcp(let host, let port):
            bootstrap = bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1)
            connected = bootstrap.connect(host: host, port: port)
        case .unix(let path):
            connected = bootstrap.connect(unixDomainSocketPath: path)
        }
        let deadline = NIODeadline.now() + configuration.connectTimeout.timeAmount
        return connected.flatMapErrorThrowing { error in
            throw RedisError(code: .connectionRefused, message: "could not connect to Redis at \(endpoint): \(error)")
        }.flatMap { channel in
            let handler: RedisChannelHandler
            do {
                handler = try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self)
            } catch {
                channel.close(promise: nil)
                return eventLoop.makeFailedFuture(
                    RedisError(code: .connectionRefused, message: "connection to \(endpoint) lost its handler: \(error)")
                )
            }
            let connection = RedisConnection(channel: channel, handler: handler, endpoint: endpoint)
            return connection.handshake(configuration: configuration, deadline: deadline).map { connection in
                // Only now: a failed handshake is counted once, by whoever dialled.
                connection.handler.observer = observer
                return connection
            }
        }
    }

    private func handshake(configuration: RedisConfiguration, deadline: NIODeadline) -> EventLoopFuture<RedisConnection> {
        let commands = Self.handshakeCommands(configuration)
        guard !commands.isEmpty else {
            return self.eventLoop.makeSucceededFuture(self)
        }
        let endpoint = self.endpoint
        return self.send(batch: commands, deadline: deadline).flatMapThrowing { replies in
            for (command, reply) in zip(commands, replies) {
                if case .error(let message) = reply {
                    throw RedisError(
                        code: .connectionRefused,
                        message: "Redis at \(endpoint) refused \(command.name) on connect: \(message)",
                        command: command.description
                    )
                }
            }
            return self
        }.flatMapError { error in
            self.channel.close(promise: nil)
            if let redisError = error as? RedisError, redisError.code == .connectionRefused {
                return self.eventLoop.makeFailedFuture(redisError)
            }
            return self.eventLoop.makeFailedFuture(
                RedisError(code: .connectionRefused, message: "handshake with Redis at \(endpoint) failed: \(error)")
            )
        }
    }

    /// `AUTH` and `SELECT` as the configuration asks, in that order.
    static func handshakeCommands(_ configuration: RedisConfiguration) -> [RedisCommand] {
        var commands: [RedisCommand] = []
        if let password = configuration.password {
            if let username = configuration.username {
                commands.append(RedisCommand("AUTH", .string(username), .string(password)))
            } else {
                commands.append(RedisCommand("AUTH", .string(password)))
            }
        }
        if configuration.database != 0 {
            commands.append(RedisCommand("SELECT", .integer(Int64(configuration.database))))
        }
        return commands
    }

    /// Writes one command; the future carries its reply or fails with a `RedisError`.
    func send(_ command: RedisCommand, deadline: NIODeadline) -> EventLoopFuture<RESPValue> {
        self.eventLoop.preconditionInEventLoop()
        let promise = self.eventLoop.makePromise(of: RESPValue.self)
        self.write(RedisRequest(payload: .single(command, promise), deadline: deadline))
        return promise.futureResult
    }

    /// Writes several commands back to back; the future carries every reply in order, server
    /// errors in place as `RESPValue.error`.
    func send(batch commands: [RedisCommand], deadline: NIODeadline) -> EventLoopFuture<[RESPValue]> {
        self.eventLoop.preconditionInEventLoop()
        let promise = self.eventLoop.makePromise(of: [RESPValue].self)
        self.write(RedisRequest(payload: .batch(commands, promise), deadline: deadline))
        return promise.futureResult
    }

    /// Writes `request` now and flushes at the end of this event-loop tick.
    ///
    /// On a closed connection the request fails at once: once NIO has removed the handlers a
    /// write would be dropped silently and its promise never completed.
    func write(_ request: RedisRequest) {
        guard self.channel.isActive else {
            request.fail(RedisError(
                code: .connectionClosed,
                message: "the connection to \(self.endpoint) is closed; the command was not sent"
            ))
            return
        }
        self.channel.pipeline.syncOperations.write(NIOAny(request), promise: nil)
        if !self.flushScheduled {
            self.flushScheduled = true
            self.eventLoop.execute {
                self.flushScheduled = false
                self.channel.flush()
            }
        }
    }

    func close() {
        self.channel.close(promise: nil)
    }
}

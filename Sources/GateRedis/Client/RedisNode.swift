import GateCore
import Logging
import NIOCore

/// Everything the client keeps on one event loop: the shared connection for stateless commands,
/// the pool of exclusive connections for WATCH … EXEC, and the circuit breaker both obey.
///
/// All state is touched on `eventLoop` only, so nothing here takes a lock; callers on another
/// thread hop in through `execute`. The class is `@unchecked Sendable` for that reason.
///
/// The shared connection is kept up in the background: when it fails or drops, it is re-dialled
/// after a back-off delay, whether or not commands are waiting, so a restarted Redis is found
/// again by itself. Commands that arrive while it is down wait (until their own deadline) for
/// the next dial; a failed dial fails them at once with the reason. Timeouts, failed dials and
/// lost connections count against the breaker; once it opens, commands fail with `circuitOpen`
/// immediately instead of each waiting out its timeout.
final class RedisNode: @unchecked Sendable, RedisConnectionObserver {
    private enum SharedState {
        /// Nothing dialled yet.
        case idle
        /// A dial is in progress.
        case connecting
        /// The connection is up and carries commands.
        case ready(RedisConnection)
        /// Waiting `delay` before the next dial, after a failure or a lost connection.
        case waitingToReconnect(Scheduled<Void>)
        /// The client shut down.
        case shutdown
    }

    private struct LeaseWaiter {
        let promise: EventLoopPromise<RedisExclusiveConnection>
        let deadline: NIODeadline
        /// Admitted as the half-open breaker's probe: the lease must report its first command.
        let isProbe: Bool
    }

    let eventLoop: any EventLoop
    let configuration: RedisConfiguration
    private let logger: Logger

    private var breaker: CircuitBreaker
    private var backoff: ExponentialBackoff
    private var lastFailure: RedisError?

    private var shared: SharedState = .idle
    /// Requests waiting for the shared connection to come up.
    private var waitingRequests = CircularBuffer<RedisRequest>()
    private var waitingTimer: Scheduled<Void>?

    /// Idle exclusive connections, most recently used last.
    private var idleExclusive: [RedisConnection] = []
    private var leasedCount = 0
    private var openingCount = 0
    private var leaseWaiters = CircularBuffer<LeaseWaiter>()
    private var leaseTimer: Scheduled<Void>?

    /// Asked for the primary before every dial, when the client follows Sentinel.
    private let sentinel: RedisSentinel?

    init(eventLoop: any EventLoop, configuration: RedisConfiguration, logger: Logger, sentinel: RedisSentinel? = nil) {
        self.eventLoop = eventLoop
        self.sentinel = sentinel
        self.configuration = configuration
        self.logger = logger
        self.breaker = CircuitBreaker(configuration: configuration.circuitBreaker)
        self.backoff = configuration.reconnectBackoff
    }

    /// The breaker's phase, for metrics and readiness (on the loop).
    var circuitPhase: CircuitBreaker.Phase {
        self.eventLoop.preconditionInEventLoop()
        return self.breaker.phase(at: MonotonicInstant.now())
    }

    // MARK: Shared connection

    /// Sends `request` on the shared connection; must be called on the loop.
    func send(_ request: RedisRequest) {
        self.eventLoop.preconditionInEventLoop()
        switch self.admit() {
        case .refuse(let refusal):
            request.fail(refusal)
            return
        case .probe:
            request.whenAnswered { answered in self.probeFinished(answered: answered) }
        case .pass:
            break
        }
        switch self.shared {
        case .ready(let connection) where connection.isActive:
            connection.write(request)
        case .ready:
            // Closing: its close callback is about to schedule the re-dial; wait for that.
            self.enqueueWaiting(request)
        case .shutdown:
            request.fail(RedisError(code: .shutdown, message: "the Redis client has been shut down"))
        case .idle:
            self.enqueueWaiting(request)
            self.dialShared()
        case .connecting, .waitingToReconnect:
            self.enqueueWaiting(request)
        }
    }

    /// Starts the shared connection now, if it is not up or on its way.
    func start() {
        self.eventLoop.preconditionInEventLoop()
        if case .idle = self.shared {
            self.dialShared()
        }
    }

    /// What the breaker says about one more call.
    private enum Gate {
        /// Go ahead.
        case pass
        /// Go ahead, and report whether Redis answered: the breaker is waiting to hear.
        case probe
        /// Fail at once with this error.
        case refuse(RedisError)
    }

    private func admit() -> Gate {
        switch self.breaker.admit(now: MonotonicInstant.now()) {
        case .allow:
            return .pass
        case .probe:
            return .probe
        case .reject(let retryAt):
            let wait = retryAt - MonotonicInstant.now()
            let reason = self.lastFailure.map { ": \($0.message)" } ?? ""
            return .refuse(RedisError(
                code: .circuitOpen,
                message: "Redis at \(self.configuration.endpoint) is failing\(reason); failing fast, next try in \(wait.formattedMilliseconds)"
            ))
        }
    }

    /// The half-open breaker's probe came back: any reply (a server error too) means Redis
    /// answers; a timeout or a lost connection means it still does not.
    func probeFinished(answered: Bool) {
        self.eventLoop.preconditionInEventLoop()
        if answered {
            self.lastFailure = nil
            self.breaker.recordSuccess()
        } else {
            self.recordFailure(self.lastFailure ?? RedisError(code: .timeout, message: "the probe got no reply"))
        }
    }

    private func enqueueWaiting(_ request: RedisRequest) {
        self.waitingRequests.append(request)
        if self.waitingTimer == nil {
            self.armWaitingTimer(at: request.deadline)
        }
    }

    private func armWaitingTimer(at deadline: NIODeadline) {
        self.waitingTimer = self.eventLoop.scheduleTask(deadline: deadline) {
            self.waitingTimer = nil
            let now = NIODeadline.now()
            var kept = CircularBuffer<RedisRequest>(initialCapacity: self.waitingRequests.count)
            while let request = self.waitingRequests.popFirst() {
                if request.deadline <= now {
                    request.fail(RedisError(
                        code: .timeout,
                        message: "Redis at \(self.configuration.endpoint) was not reachable within the command timeout"
                    ))
                } else {
                    kept.append(request)
                }
            }
            self.waitingRequests = kept
            if let earliest = kept.map(\.deadline).min() {
                self.armWaitingTimer(at: earliest)
            }
        }
    }

    /// A new connection: to the configured endpoint, or to the primary Sentinel names.
    private func dial() -> EventLoopFuture<RedisConnection> {
        if let sentinel = self.sentinel {
            return sentinel.connectToPrimary(configuration: self.configuration, eventLoop: self.eventLoop, observer: self)
        }
        return RedisConnection.connect(configuration: self.configuration, eventLoop: self.eventLoop, observer: self)
    }

    /// Closes the shared connection (it is re-dialled): the server it reaches is no longer the
    /// primary (a `READONLY` answer after a fail-over). Must be called on the loop.
    func dropShared() {
        self.eventLoop.preconditionInEventLoop()
        if case .ready(let connection) = self.shared {
            self.logger.warning("redis answered READONLY: no longer the primary; reconnecting", metadata: ["redis": "\(self.configuration.endpoint)"])
            connection.close()
        }
    }

    private func dialShared() {
        self.shared = .connecting
        self.dial()
            .whenComplete { result in
                switch result {
                case .success(let connection):
                    self.sharedConnected(connection)
                case .failure(let error):
                    self.sharedFailed(error as? RedisError ?? RedisError(code: .connectionRefused, message: "\(error)"))
                }
            }
    }

    private func sharedConnected(_ connection: RedisConnection) {
        guard case .connecting = self.shared else {
            connection.close()
            return
        }
        if self.lastFailure != nil {
            self.logger.info("redis connection restored", metadata: ["redis": "\(self.configuration.endpoint)"])
        }
        self.lastFailure = nil
        self.breaker.recordSuccess()
        self.backoff.reset()
        self.shared = .ready(connection)
        self.waitingTimer?.cancel()
        self.waitingTimer = nil
        while let request = self.waitingRequests.popFirst() {
            connection.write(request)
        }
        connection.closeFuture.whenComplete { _ in
            self.sharedClosed(connection)
        }
    }

    private func sharedFailed(_ error: RedisError) {
        guard case .connecting = self.shared else {
            return
        }
        self.recordFailure(error)
        while let request = self.waitingRequests.popFirst() {
            request.fail(error)
        }
        self.waitingTimer?.cancel()
        self.waitingTimer = nil
        self.scheduleReconnect()
    }

    private func sharedClosed(_ connection: RedisConnection) {
        guard case .ready(let current) = self.shared, current === connection else {
            return
        }
        let error = RedisError(code: .connectionClosed, message: "lost the connection to Redis at \(self.configuration.endpoint)")
        self.logger.warning("redis connection lost; reconnecting", metadata: ["redis": "\(self.configuration.endpoint)"])
        self.recordFailure(error)
        self.scheduleReconnect()
    }

    private func scheduleReconnect() {
        let delay = self.backoff.nextDelay(unitRandom: Double.random(in: 0..<1))
        let task = self.eventLoop.scheduleTask(in: delay.timeAmount) {
            guard case .waitingToReconnect = self.shared else {
                return
            }
            self.dialShared()
        }
        self.shared = .waitingToReconnect(task)
    }

    private func recordFailure(_ error: RedisError) {
        if self.lastFailure == nil {
            self.logger.warning("redis failing", metadata: ["redis": "\(self.configuration.endpoint)", "error": "\(error)"])
        }
        self.lastFailure = error
        if self.breaker.recordFailure(now: MonotonicInstant.now()) {
            self.logger.error(
                "redis circuit breaker opened",
                metadata: ["redis": "\(self.configuration.endpoint)", "error": "\(error)"]
            )
        }
    }

    // MARK: RedisConnectionObserver

    func redisConnectionTimedOut() {
        self.recordFailure(RedisError(code: .timeout, message: "commands time out"))
    }

    func redisConnectionRecovered() {
        self.lastFailure = nil
        self.breaker.recordSuccess()
    }

    // MARK: Exclusive pool

    /// Leases an exclusive connection; must be called on the loop.
    func lease(deadline: NIODeadline) -> EventLoopFuture<RedisExclusiveConnection> {
        self.eventLoop.preconditionInEventLoop()
        if case .shutdown = self.shared {
            return self.eventLoop.makeFailedFuture(RedisError(code: .shutdown, message: "the Redis client has been shut down"))
        }
        let isProbe: Bool
        switch self.admit() {
        case .refuse(let refusal):
            return self.eventLoop.makeFailedFuture(refusal)
        case .probe:
            isProbe = true
        case .pass:
            isProbe = false
        }
        while let connection = self.idleExclusive.popLast() {
            if connection.isActive {
                self.leasedCount += 1
                return self.eventLoop.makeSucceededFuture(
                    RedisExclusiveConnection(connection: connection, node: self, reportsProbe: isProbe)
                )
            }
        }
        let promise = self.eventLoop.makePromise(of: RedisExclusiveConnection.self)
        self.leaseWaiters.append(LeaseWaiter(promise: promise, deadline: deadline, isProbe: isProbe))
        if self.leaseTimer == nil {
            self.armLeaseTimer(at: deadline)
        }
        self.openExclusiveIfRoom()
        return promise.futureResult
    }

    private var exclusiveCount: Int {
        self.leasedCount + self.openingCount + self.idleExclusive.count
    }

    private func openExclusiveIfRoom() {
        guard self.openingCount < self.leaseWaiters.count,
            self.exclusiveCount < self.configuration.exclusiveConnectionsPerLoop
        else {
            return
        }
        self.openingCount += 1
        self.dial()
            .whenComplete { result in
                self.openingCount -= 1
                switch result {
                case .success(let connection):
                    if case .shutdown = self.shared {
                        connection.close()
                        return
                    }
                    self.breaker.recordSuccess()
                    self.giveBack(connection)
                case .failure(let error):
                    let redisError = error as? RedisError ?? RedisError(code: .connectionRefused, message: "\(error)")
                    self.recordFailure(redisError)
                    while let waiter = self.leaseWaiters.popFirst() {
                        waiter.promise.fail(redisError)
                    }
                }
            }
    }

    /// Takes a connection back from a lease (or a fresh dial) and serves the next waiter.
    private func giveBack(_ connection: RedisConnection) {
        guard connection.isActive else {
            self.openExclusiveIfRoom()
            return
        }
        if let waiter = self.leaseWaiters.popFirst() {
            self.leasedCount += 1
            waiter.promise.succeed(RedisExclusiveConnection(connection: connection, node: self, reportsProbe: waiter.isProbe))
        } else {
            self.idleExclusive.append(connection)
        }
    }

    /// Called by a lease when its user is done; `reset` is what must be undone first.
    func release(_ connection: RedisConnection, reset: RedisExclusiveConnection.PendingReset) {
        self.eventLoop.preconditionInEventLoop()
        self.leasedCount -= 1
        if case .shutdown = self.shared {
            connection.close()
            return
        }
        // A timed-out command leaves the server's state unknown (in MULTI? still watching?).
        if !connection.isActive || connection.hasTimedOut {
            connection.close()
            self.openExclusiveIfRoom()
            return
        }
        let deadline = NIODeadline.now() + self.configuration.commandTimeout.timeAmount
        switch reset {
        case .none:
            break
        case .close:
            // The user changed per-connection state (SELECT, CLIENT SETNAME, SUBSCRIBE, …) that
            // the next user must not inherit.
            connection.close()
            self.openExclusiveIfRoom()
            return
        case .unwatch:
            connection.send(RedisCommand("UNWATCH"), deadline: deadline).whenFailure { _ in connection.close() }
        case .discard:
            connection.send(RedisCommand("DISCARD"), deadline: deadline).whenFailure { _ in connection.close() }
        }
        // The reset is queued ahead of whatever the next user sends, so order keeps it safe.
        self.giveBack(connection)
    }

    private func armLeaseTimer(at deadline: NIODeadline) {
        self.leaseTimer = self.eventLoop.scheduleTask(deadline: deadline) {
            self.leaseTimer = nil
            let now = NIODeadline.now()
            var kept = CircularBuffer<LeaseWaiter>(initialCapacity: self.leaseWaiters.count)
            while let waiter = self.leaseWaiters.popFirst() {
                if waiter.deadline <= now {
                    waiter.promise.fail(self.acquireTimeoutError())
                } else {
                    kept.append(waiter)
                }
            }
            self.leaseWaiters = kept
            if let earliest = kept.map(\.deadline).min() {
                self.armLeaseTimer(at: earliest)
            }
        }
    }

    /// Why a lease waited past its acquire timeout: busy connections, or a dial not done yet.
    private func acquireTimeoutError() -> RedisError {
        if self.leasedCount >= self.configuration.exclusiveConnectionsPerLoop {
            return RedisError(
                code: .poolExhausted,
                message: "all \(self.configuration.exclusiveConnectionsPerLoop) exclusive Redis connections of this event loop stayed busy for the acquire timeout; raise exclusiveConnectionsPerLoop or hold connections shorter"
            )
        }
        let reason = self.lastFailure.map { " (last failure: \($0.message))" } ?? ""
        return RedisError(
            code: .timeout,
            message: "could not open an exclusive connection to Redis at \(self.configuration.endpoint) within the acquire timeout\(reason)"
        )
    }

    // MARK: Shutdown

    /// Closes every connection and fails everything waiting; must be called on the loop.
    func shutdown() -> EventLoopFuture<Void> {
        self.eventLoop.preconditionInEventLoop()
        let error = RedisError(code: .shutdown, message: "the Redis client has been shut down")
        var closing: [EventLoopFuture<Void>] = []
        switch self.shared {
        case .ready(let connection):
            closing.append(connection.channel.close().recover { _ in })
        case .waitingToReconnect(let task):
            task.cancel()
        case .idle, .connecting, .shutdown:
            break
        }
        self.shared = .shutdown
        while let request = self.waitingRequests.popFirst() {
            request.fail(error)
        }
        while let waiter = self.leaseWaiters.popFirst() {
            waiter.promise.fail(error)
        }
        self.waitingTimer?.cancel()
        self.leaseTimer?.cancel()
        for connection in self.idleExclusive {
            closing.append(connection.channel.close().recover { _ in })
        }
        self.idleExclusive.removeAll()
        return EventLoopFuture.andAllComplete(closing, on: self.eventLoop)
    }
}

extension Duration {
    /// "12 ms", for messages.
    var formattedMilliseconds: String {
        "\(max(0, self.nanosecondsClamped / 1_000_000)) ms"
    }
}

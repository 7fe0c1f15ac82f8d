import NIOCore

/// Told about a connection's health by its handler, on the connection's event loop.
protocol RedisConnectionObserver: AnyObject, Sendable {
    /// A command on the connection passed its deadline unanswered.
    func redisConnectionTimedOut()
    /// A reply arrived after one or more timeouts: Redis is answering again.
    func redisConnectionRecovered()
}

/// Writes Redis commands and matches the replies, in order, to the requests that sent them.
///
/// Many requests may be in flight (pipelining): each command takes a slot at the tail of a FIFO
/// when written, and each reply completes the slot at the head. Writes are gathered in one
/// outbound buffer until `flush`, so a burst of commands leaves in one system call.
///
/// Timeouts: every slot has a deadline, and one timer per connection fails the slots whose
/// deadline has passed. A timed-out slot stays in the FIFO (abandoned), because its reply may
/// still come and must be matched to it, not to the next command. `hasTimedOut` tells an
/// exclusive connection's owner that the server's state is no longer known. A peer that let a
/// command time out and then answered nothing for `silenceLimit` is given up on: the connection
/// is closed so its owner dials again (a dead host never sends the reset that would tell us).
///
/// Completing a promise runs its callbacks at once, and they may write, release or close this
/// very connection; so every pass over the FIFO first settles the handler's own state and only
/// then completes promises.
///
/// Bad input: anything hiredis cannot parse, or a reply with no request waiting for it, fails
/// every pending slot with `protocolError` and closes the connection. When the connection goes
/// away, every pending slot fails with `connectionClosed`: nothing waits forever.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private enum Waiter {
        /// A single command's promise, and the command (named in its errors).
        case single(EventLoopPromise<RESPValue>, RedisCommand)
        /// One command of a batch (the batch names its commands).
        case batch(RedisBatchReplies)
        /// Timed out; its reply, when it comes, is dropped.
        case abandoned

        func fail(_ error: RedisError) {
            switch self {
            case .single(let promise, let command):
                promise.fail(error.with(command: command))
            case .batch(let batch):
                batch.fail(error)
            case .abandoned:
                break
            }
        }
    }

    private struct Slot {
        var waiter: Waiter
        let deadline: NIODeadline
    }

    private enum State {
        /// Commands are accepted.
        case open
        /// The connection failed or closed; new commands fail with `error`.
        case closed(RedisError)
    }

    private var state: State = .open
    private var slots = CircularBuffer<Slot>(initialCapacity: 64)
    private var outbound: ByteBuffer
    private let reader: RESPReader
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var timedOutSinceLastReply = false
    /// Since when the peer owes a reply: the last read, or the write that found the FIFO empty.
    private var waitingSince: NIODeadline?
    private let silenceLimit: TimeAmount
    private let peer: String
    weak var observer: (any RedisConnectionObserver)?

    /// Whether any command on this connection has timed out.
    private(set) var hasTimedOut = false

    init(peer: String, maximumReplyBytes: Int, silenceLimit: TimeAmount = .seconds(2)) {
        self.peer = peer
        self.reader = RESPReader(maximumReplyBytes: maximumReplyBytes)
        self.outbound = ByteBuffer()
        self.silenceLimit = silenceLimit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.outbound = context.channel.allocator.buffer(capacity: 1024)
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = self.unwrapOutboundIn(data)
        if case .closed(let error) = self.state {
            request.fail(error)
            promise?.fail(error)
            return
        }
        if self.slots.isEmpty {
            self.waitingSince = context.eventLoop.now
        }
        switch request.payload {
        case .single(let command, let replyPromise):
            command.encode(into: &self.outbound)
            self.slots.append(Slot(waiter: .single(replyPromise, command), deadline: request.deadline))
        case .batch(let commands, let replyPromise):
            if commands.isEmpty {
                replyPromise.succeed([])
                break
            }
            let batch = RedisBatchReplies(commands: commands, promise: replyPromise)
            for command in commands {
                command.encode(into: &self.outbound)
                self.slots.append(Slot(waiter: .batch(batch), deadline: request.deadline))
            }
        }
        promise?.succeed(())
        self.armTimer(context: context, for: request.deadline)
    }

    func flush(context: ChannelHandlerContext) {
        if self.outbound.readableBytes > 0 {
            let bytes = self.outbound
            self.outbound = context.channel.allocator.buffer(capacity: max(1024, bytes.readableBytes))
            context.write(self.wrapOutboundOut(bytes), promise: nil)
        }
        context.flush()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        self.waitingSince = context.eventLoop.now
        var unsolicited: RESPValue?
        do throws(RedisError) {
            try self.reader.feed(buffer)
            try self.reader.readReplies { reply in
                // A callback of a delivered reply may close this connection; stop then.
                guard case .open = self.state else {
                    return false
                }
                guard let slot = self.slots.popFirst() else {
                    unsolicited = reply
                    return false
                }
                self.deliver(reply, to: slot)
                return true
            }
        } catch {
            self.failAndClose(context: context, error: error)
            return
        }
        if let unsolicited {
            self.failAndClose(context: context, error: RedisError(
                code: .protocolError,
                message: "\(self.peer) sent a reply no command asked for: \(unsolicited)"
            ))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let error: RedisError
        switch self.state {
        case .closed(let reason):
            error = reason
        case .open:
            error = RedisError(
                code: .connectionClosed,
                message: "the connection to \(self.peer) closed with the command unanswered; it may or may not have run"
            )
        }
        self.state = .closed(error)
        self.timer?.cancel()
        self.timer = nil
        self.timerDeadline = nil
        self.failAllSlots(error)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let redisError = error as? RedisError ?? RedisError(
            code: .connectionClosed,
            message: "the connection to \(self.peer) failed: \(error); the command may or may not have run"
        )
        self.failAndClose(context: context, error: redisError)
    }

    // MARK: Private

    private func deliver(_ reply: RESPValue, to slot: Slot) {
        if self.timedOutSinceLastReply {
            self.timedOutSinceLastReply = false
            self.observer?.redisConnectionRecovered()
        }
        switch slot.waiter {
        case .single(let promise, let command):
            if case .error(let message) = reply {
                promise.fail(RedisError.server(message).with(command: command))
            } else {
                promise.succeed(reply)
            }
        case .batch(let batch):
            batch.append(reply)
        case .abandoned:
            break
        }
    }

    private func failAndClose(context: ChannelHandlerContext, error: RedisError) {
        if case .closed = self.state {
            return
        }
        self.state = .closed(error)
        // Close before failing: a callback that retries must find the channel inactive, so its
        // command waits for the re-dial instead of failing with this connection's error.
        context.close(promise: nil)
        self.failAllSlots(error)
    }

    /// Empties the FIFO first, then fails what it held (callbacks may touch the handler).
    private func failAllSlots(_ error: RedisError) {
        let failed = self.slots
        self.slots.removeAll()
        for slot in failed {
            slot.waiter.fail(error)
        }
    }

    private func armTimer(context: ChannelHandlerContext, for deadline: NIODeadline) {
        if let current = self.timerDeadline, current <= deadline {
            return
        }
        self.timer?.cancel()
        self.timerDeadline = deadline
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(deadline: deadline) {
            loopBoundSelf.value.timerFired(context: loopBoundContext.value)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        self.timer = nil
        self.timerDeadline = nil
        guard case .open = self.state else {
            return
        }
        let now = context.eventLoop.now

        // Phase 1: settle the FIFO and the handler's own state.
        var expired: [Waiter] = []
        var earliest: NIODeadline?
        for index in self.slots.indices {
            let slot = self.slots[index]
            if case .abandoned = slot.waiter {
                continue
            }
            if slot.deadline > now {
                earliest = min(earliest ?? slot.deadline, slot.deadline)
                continue
            }
            expired.append(slot.waiter)
            self.slots[index].waiter = .abandoned
        }
        if !expired.isEmpty {
            self.hasTimedOut = true
            self.timedOutSinceLastReply = true
        }
        // Only a peer that let a command time out and then stayed silent is given up on; a long
        // blocking command within its own timeout is not silence.
        if self.timedOutSinceLastReply, let since = self.waitingSince, !self.slots.isEmpty {
            let giveUpAt = since + self.silenceLimit
            if giveUpAt <= now {
                let silence = RedisError(
                    code: .timeout,
                    message: "\(self.peer) has answered nothing for \((now - since).nanoseconds / 1_000_000) ms; closing the connection to dial again"
                )
                self.failAndClose(context: context, error: silence)
            } else {
                earliest = min(earliest ?? giveUpAt, giveUpAt)
            }
        }
        if let earliest, case .open = self.state {
            self.armTimer(context: context, for: earliest)
        }

        // Phase 2: tell the world.
        guard !expired.isEmpty else {
            return
        }
        self.observer?.redisConnectionTimedOut()
        let error = RedisError(
            code: .timeout,
            message: "no reply from \(self.peer) within the command timeout; the command may still run"
        )
        for waiter in expired {
            waiter.fail(error)
        }
    }
}

@available(*, unavailable)
extension RedisChannelHandler: Sendable {}

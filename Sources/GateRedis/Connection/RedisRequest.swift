import NIOCore

/// Commands written to a connection together with the promise their replies complete.
///
/// A `single` request's reply is delivered as the value (a server error reply fails it); a
/// `batch` is one pipeline whose replies come back together, server errors in place as
/// `RESPValue.error`, because the batch's other commands ran regardless.
struct RedisRequest {
    enum Payload {
        /// One command, its reply (or server error) completing `promise`.
        case single(RedisCommand, EventLoopPromise<RESPValue>)
        /// Several commands sent back to back; `promise` receives every reply, in order.
        case batch([RedisCommand], EventLoopPromise<[RESPValue]>)
    }

    var payload: Payload
    /// When the reply must have arrived; past it the request fails with `timeout`.
    var deadline: NIODeadline

    /// Calls `body` once the request completes: `true` if Redis answered (a server error is an
    /// answer too), `false` if it timed out or the connection failed.
    func whenAnswered(_ body: @escaping @Sendable (Bool) -> Void) {
        switch self.payload {
        case .single(_, let promise):
            promise.futureResult.whenComplete { body(Self.answered($0)) }
        case .batch(_, let promise):
            promise.futureResult.whenComplete { body(Self.answered($0)) }
        }
    }

    static func answered<Value>(_ result: Result<Value, any Error>) -> Bool {
        switch result {
        case .success:
            return true
        case .failure(let error):
            return (error as? RedisError)?.code == .serverError
        }
    }

    func fail(_ error: RedisError) {
        switch self.payload {
        case .single(let command, let promise):
            promise.fail(error.with(command: command))
        case .batch(_, let promise):
            promise.fail(error)
        }
    }
}

/// The replies of one batch, gathered until the last arrives.
final class RedisBatchReplies {
    /// Replies so far; `nil` once the promise is completed (all in, timed out, or failed).
    private var replies: [RESPValue]?
    let commands: [RedisCommand]
    let promise: EventLoopPromise<[RESPValue]>

    init(commands: [RedisCommand], promise: EventLoopPromise<[RESPValue]>) {
        self.commands = commands
        self.promise = promise
        var replies: [RESPValue] = []
        replies.reserveCapacity(commands.count)
        self.replies = replies
    }

    func append(_ reply: RESPValue) {
        guard var replies = self.replies.take() else {
            return
        }
        replies.append(reply)
        if replies.count == self.commands.count {
            self.promise.succeed(replies)
        } else {
            self.replies = replies
        }
    }

    func fail(_ error: RedisError) {
        guard self.replies.take() != nil else {
            return
        }
        let names = Set(self.commands.map(\.name)).sorted().joined(separator: ", ")
        var failure = error
        failure.command = "pipeline of \(self.commands.count) (\(names))"
        self.promise.fail(failure)
    }
}

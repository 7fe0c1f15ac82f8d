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
    private(set) var replies: [RESPValue]
    let expected: Int
    let promise: EventLoopPromise<[RESPValue]>
    /// Set once the promise is completed (all replies in, timed out, or failed).
    private(set) var isFinished = false

    init(expected: Int, promise: EventLoopPromise<[RESPValue]>) {
        self.expected = expected
        self.promise = promise
        self.replies = []
        self.replies.reserveCapacity(expected)
    }

    func append(_ reply: RESPValue) {
        guard !self.isFinished else {
            return
        }
        self.replies.append(reply)
        if self.replies.count == self.expected {
            self.isFinished = true
            self.promise.succeed(self.replies)
        }
    }

    func fail(_ error: RedisError) {
        guard !self.isFinished else {
            return
        }
        self.isFinished = true
        self.promise.fail(error)
    }
}

import CHiredis
import NIOCore

/// Parses RESP replies with hiredis's `redisReader`, building `RESPValue`s directly.
///
/// hiredis does the byte-level work (framing, lengths, nesting); instead of its default
/// `redisReply` objects it calls the object functions below, which build Swift values as the
/// parse goes, so a reply is allocated once and never converted. Each reader belongs to one
/// connection and is used on that connection's event loop only.
///
/// Input that is not RESP — a server that is not Redis, a reply deeper than hiredis supports, a
/// reply larger than `maximumReplyBytes` — makes `next()` throw `RedisError.protocolError`; the
/// reader is then unusable and its connection must be closed.
final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>
    private let collector: ReplyCollector
    /// The largest reply, in bytes, that may sit unparsed in the buffer.
    let maximumReplyBytes: Int
    private var failed: RedisError?

    /// Creates a reader that refuses replies larger than `maximumReplyBytes`.
    init(maximumReplyBytes: Int = 64 * 1024 * 1024) {
        guard let reader = redisReaderCreateWithFunctions(replyObjectFunctions) else {
            fatalError("hiredis could not allocate a reader (out of memory)")
        }
        self.reader = reader
        self.collector = ReplyCollector(maximumReplyBytes: maximumReplyBytes)
        self.maximumReplyBytes = maximumReplyBytes
        reader.pointee.privdata = Unmanaged.passUnretained(self.collector).toOpaque()
    }

    deinit {
        // The collector owns every partial reply, so hiredis's freeObject has nothing to free.
        redisReaderFree(self.reader)
    }

    /// Hands received bytes to the parser.
    func feed(_ buffer: ByteBuffer) throws(RedisError) {
        if let failed = self.failed {
            throw failed
        }
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else {
                return REDIS_OK
            }
            return redisReaderFeed(self.reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK {
            throw self.fail(self.readerError())
        }
    }

    /// The next complete reply, or `nil` when more bytes are needed.
    func next() throws(RedisError) -> RESPValue? {
        if let failed = self.failed {
            throw failed
        }
        var reply: UnsafeMutableRawPointer? = nil
        if redisReaderGetReply(self.reader, &reply) != REDIS_OK {
            throw self.fail(self.collector.failure ?? self.readerError())
        }
        guard reply != nil else {
            let buffered = self.reader.pointee.len - self.reader.pointee.pos
            if buffered > self.maximumReplyBytes {
                throw self.fail("a reply is larger than \(self.maximumReplyBytes) bytes (the client's limit)")
            }
            return nil
        }
        return self.collector.takeCompleted()
    }

    private func readerError() -> String {
        withUnsafeBytes(of: &self.reader.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            let text = String(decoding: bytes, as: UTF8.self)
            return text.isEmpty ? "hiredis reader failed" : text
        }
    }

    private func fail(_ message: String) -> RedisError {
        let error = RedisError(code: .protocolError, message: message)
        self.failed = error
        self.collector.reset()
        return error
    }
}

/// The reply tree under construction, reachable from hiredis's callbacks through `privdata`.
private final class ReplyCollector {
    /// An array reply being filled, element by element.
    final class ArrayBuilder {
        enum Slot {
            case value(RESPValue)
            case nested(ArrayBuilder)
        }

        var slots: [Slot] = []

        init(expected: Int) {
            self.slots.reserveCapacity(min(expected, 1024))
        }

        func build() -> RESPValue {
            .array(self.slots.map { slot in
                switch slot {
                case .value(let value):
                    return value
                case .nested(let builder):
                    return builder.build()
                }
            })
        }
    }

    /// What one element costs besides its payload, for the size limit (an enum case in an array).
    static let elementCost = 16

    let maximumReplyBytes: Int
    /// Bytes the top-level reply under construction has cost so far.
    private var replyBytes = 0
    /// A complete top-level reply that is not an array.
    private var leaf: RESPValue?
    /// The top-level array being built (or just completed).
    private var root: ArrayBuilder?
    /// Why a callback refused to build an object (hiredis then only says "out of memory").
    var failure: String?

    init(maximumReplyBytes: Int) {
        self.maximumReplyBytes = maximumReplyBytes
    }

    /// Counts `bytes` against the reply's size limit; `false` (with `failure` set) past it.
    ///
    /// hiredis consumes an array's elements as they arrive, so the unparsed-buffer check alone
    /// would let a reply of millions of small elements through.
    func charge(_ bytes: Int) -> Bool {
        self.replyBytes += bytes + ReplyCollector.elementCost
        if self.replyBytes > self.maximumReplyBytes {
            self.failure = "a reply is larger than \(self.maximumReplyBytes) bytes (the client's limit)"
            return false
        }
        return true
    }

    /// Files `value` under its parent array, or keeps it as the top-level reply.
    func place(_ value: RESPValue, task: UnsafePointer<redisReadTask>) -> UnsafeMutableRawPointer {
        if let parent = task.pointee.parent, let parentObject = parent.pointee.obj {
            Unmanaged<ArrayBuilder>.fromOpaque(parentObject).takeUnretainedValue().slots.append(.value(value))
        } else {
            self.leaf = value
        }
        return Unmanaged.passUnretained(self).toOpaque()
    }

    /// Starts an array of `count` elements under its parent, or as the top-level reply.
    func startArray(count: Int, task: UnsafePointer<redisReadTask>) -> UnsafeMutableRawPointer? {
        guard count <= self.maximumReplyBytes / ReplyCollector.elementCost else {
            self.failure = "an array reply announces \(count) elements, more than the client's limit"
            return nil
        }
        guard self.charge(0) else {
            return nil
        }
        let builder = ArrayBuilder(expected: count)
        if let parent = task.pointee.parent, let parentObject = parent.pointee.obj {
            Unmanaged<ArrayBuilder>.fromOpaque(parentObject).takeUnretainedValue().slots.append(.nested(builder))
        } else {
            self.root = builder
        }
        return Unmanaged.passUnretained(builder).toOpaque()
    }

    func takeCompleted() -> RESPValue {
        self.replyBytes = 0
        if let root = self.root {
            self.root = nil
            return root.build()
        }
        let value = self.leaf ?? .null
        self.leaf = nil
        return value
    }

    func reset() {
        self.leaf = nil
        self.root = nil
        self.replyBytes = 0
    }
}

private func collector(_ task: UnsafePointer<redisReadTask>?) -> ReplyCollector? {
    guard let task, let privdata = task.pointee.privdata else {
        return nil
    }
    return Unmanaged<ReplyCollector>.fromOpaque(privdata).takeUnretainedValue()
}

/// hiredis keeps a pointer to this table for the reader's lifetime, so it lives forever.
nonisolated(unsafe) private let replyObjectFunctions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
    let table = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
    table.initialize(to: redisReplyObjectFunctions(
        createString: { task, bytes, length in
            guard let task, let collector = collector(task), collector.charge(length) else {
                return nil
            }
            let raw = UnsafeRawBufferPointer(start: bytes, count: length)
            let value: RESPValue
            switch task.pointee.type {
            case REDIS_REPLY_ERROR:
                value = .error(String(decoding: raw, as: UTF8.self))
            case REDIS_REPLY_STATUS:
                value = .simpleString(String(decoding: raw, as: UTF8.self))
            default:
                value = .bulkString(ByteBuffer(bytes: raw))
            }
            return collector.place(value, task: task)
        },
        createArray: { task, count in
            guard let task, let collector = collector(task) else {
                return nil
            }
            return collector.startArray(count: Int(count), task: task)
        },
        createInteger: { task, value in
            guard let task, let collector = collector(task), collector.charge(0) else {
                return nil
            }
            return collector.place(.integer(Int64(value)), task: task)
        },
        createNil: { task in
            guard let task, let collector = collector(task), collector.charge(0) else {
                return nil
            }
            return collector.place(.null, task: task)
        },
        freeObject: { _ in }
    ))
    return table
}()

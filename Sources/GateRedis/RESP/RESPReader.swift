import CHiredis
import NIOCore

/// Parses RESP replies with hiredis's `redisReader`, building `RESPValue`s directly.
///
/// hiredis does the byte-level work (framing, lengths, nesting); instead of its default
/// `redisReply` objects it calls the object functions below, which build Swift values as the
/// parse goes, so a reply is never converted from a C structure. Each reader belongs to one
/// connection and is used on that connection's event loop only.
///
/// Bulk strings: every reply that the bytes fed so far complete is parsed first, its bulk
/// payloads copied into one buffer per read (the arena), and only then are the replies handed
/// out, each bulk string a slice of that buffer. Pipelined replies thus cost one allocation per
/// read instead of one each; a slice kept for long keeps its read's arena (one read's bytes)
/// alive. An array spanning reads holds slices of each read's arena.
///
/// Input that is not RESP — a server that is not Redis, a reply deeper than hiredis supports, a
/// reply larger than `maximumReplyBytes` — makes `readReplies` throw `RedisError.protocolError`
/// after handing out the good replies before it; the reader is then unusable and its
/// connection must be closed.
final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>
    private let collector: ReplyCollector
    /// The largest reply, in bytes, that may sit unparsed in the buffer.
    let maximumReplyBytes: Int
    private var failed: RedisError?
    /// Replies parsed but not yet handed out (kept to reuse its capacity).
    private var parsed: [ReplyCollector.Parsed] = []

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

    /// Passes every complete reply to `deliver`, in order, while it returns `true`.
    ///
    /// Replies not taken because `deliver` returned `false` are dropped (their connection is
    /// closing). Throws when the input turns out not to be RESP, after delivering the replies
    /// that came before the bad bytes.
    func readReplies(_ deliver: (RESPValue) -> Bool) throws(RedisError) {
        if let failed = self.failed {
            throw failed
        }
        self.collector.arenaCapacityHint = self.reader.pointee.len - self.reader.pointee.pos
        var failure: RedisError?
        var replies: [ReplyCollector.Parsed] = []
        swap(&replies, &self.parsed)
        while true {
            var reply: UnsafeMutableRawPointer? = nil
            if redisReaderGetReply(self.reader, &reply) != REDIS_OK {
                failure = self.fail(self.collector.failure ?? self.readerError())
                break
            }
            guard reply != nil else {
                let buffered = self.reader.pointee.len - self.reader.pointee.pos
                if buffered > self.maximumReplyBytes {
                    failure = self.fail("a reply is larger than \(self.maximumReplyBytes) bytes (the client's limit)")
                }
                break
            }
            replies.append(self.collector.takeCompleted())
        }
        // No slice is taken before every payload of this read is in the arena, so writing it
        // never triggers a copy.
        let arena = self.collector.takeArena()
        for parsed in replies {
            if !deliver(parsed.value(in: arena)) {
                break
            }
        }
        replies.removeAll(keepingCapacity: true)
        swap(&replies, &self.parsed)
        if let failure {
            throw failure
        }
    }

    /// Every complete reply, in order (for tests and tools; the connection uses `readReplies`).
    func readAll() throws(RedisError) -> [RESPValue] {
        var all: [RESPValue] = []
        try self.readReplies { reply in
            all.append(reply)
            return true
        }
        return all
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
    /// A reply as parsed, before its bulk strings become slices of the read's arena.
    enum Parsed {
        /// A finished value (status, error, integer, null).
        case value(RESPValue)
        /// A bulk string at `offset` in the read's arena, `length` bytes long.
        case bulk(offset: Int, length: Int)
        /// A bulk string already sliced from an earlier read's arena (an array spanning reads).
        case slice(ByteBuffer)
        /// An array.
        case array(ArrayBuilder)

        func value(in arena: ByteBuffer?) -> RESPValue {
            switch self {
            case .value(let value):
                return value
            case .bulk(let offset, let length):
                return .bulkString(arena?.getSlice(at: offset, length: length) ?? ByteBuffer())
            case .slice(let bytes):
                return .bulkString(bytes)
            case .array(let builder):
                return builder.build(in: arena)
            }
        }
    }

    /// An array reply being filled, element by element.
    final class ArrayBuilder {
        var slots: [Parsed] = []

        init(expected: Int) {
            self.slots.reserveCapacity(min(expected, 1024))
        }

        func build(in arena: ByteBuffer?) -> RESPValue {
            .array(self.slots.map { $0.value(in: arena) })
        }
    }

    /// What one element costs besides its payload, for the size limit (an enum case in an array).
    static let elementCost = 16

    let maximumReplyBytes: Int
    /// Bytes the top-level reply under construction has cost so far.
    private var replyBytes = 0
    /// A complete top-level reply that is not an array.
    private var leaf: Parsed?
    /// The top-level array being built (or just completed).
    private var root: ArrayBuilder?
    /// Bulk payloads of this read; allocated at the first one, `arenaCapacityHint` bytes.
    private var arena: ByteBuffer?
    /// Array slots holding `.bulk` offsets into this read's arena, for the array still being
    /// built: at the end of the read they become slices, so the arena never outlives its read.
    private var pendingBulkSlots: [(builder: ArrayBuilder, index: Int)] = []
    /// The unparsed bytes at the start of this read: no read's payloads can exceed them.
    var arenaCapacityHint = 0
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

    /// Files `parsed` under its parent array, or keeps it as the top-level reply.
    func place(_ parsed: Parsed, task: UnsafePointer<redisReadTask>) -> UnsafeMutableRawPointer {
        if let parent = task.pointee.parent, let parentObject = parent.pointee.obj {
            Unmanaged<ArrayBuilder>.fromOpaque(parentObject).takeUnretainedValue().slots.append(parsed)
        } else {
            self.leaf = parsed
        }
        return Unmanaged.passUnretained(self).toOpaque()
    }

    /// Copies a bulk payload into the arena and files it.
    func placeBulk(_ payload: UnsafeRawBufferPointer, task: UnsafePointer<redisReadTask>) -> UnsafeMutableRawPointer {
        if self.arena == nil {
            self.arena = ByteBufferAllocator().buffer(capacity: max(self.arenaCapacityHint, payload.count))
        }
        let offset = self.arena?.writerIndex ?? 0
        self.arena?.writeBytes(payload)
        if let parent = task.pointee.parent, let parentObject = parent.pointee.obj {
            let builder = Unmanaged<ArrayBuilder>.fromOpaque(parentObject).takeUnretainedValue()
            self.pendingBulkSlots.append((builder, builder.slots.count))
        }
        return self.place(.bulk(offset: offset, length: payload.count), task: task)
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
            Unmanaged<ArrayBuilder>.fromOpaque(parentObject).takeUnretainedValue().slots.append(.array(builder))
        } else {
            self.root = builder
        }
        return Unmanaged.passUnretained(builder).toOpaque()
    }

    func takeCompleted() -> Parsed {
        self.replyBytes = 0
        // Every pending slot so far belongs to this reply, which is handed out with this arena.
        self.pendingBulkSlots.removeAll(keepingCapacity: true)
        if let root = self.root {
            self.root = nil
            return .array(root)
        }
        let parsed = self.leaf ?? .value(.null)
        self.leaf = nil
        return parsed
    }

    /// The arena of this read, for slicing the replies it completed; the next read starts a
    /// new one.
    ///
    /// The elements an unfinished array already holds are turned into slices of this arena
    /// first, so an array spanning reads never makes an arena outlive its read or grow.
    func takeArena() -> ByteBuffer? {
        guard let arena = self.arena else {
            return nil
        }
        for (builder, index) in self.pendingBulkSlots {
            if case .bulk(let offset, let length) = builder.slots[index] {
                builder.slots[index] = .slice(arena.getSlice(at: offset, length: length) ?? ByteBuffer())
            }
        }
        self.pendingBulkSlots.removeAll(keepingCapacity: true)
        self.arena = nil
        return arena
    }

    /// Drops the partial reply after a parse error. The arena stays: the replies completed
    /// before the bad bytes are still handed out from it.
    func reset() {
        self.leaf = nil
        self.root = nil
        self.pendingBulkSlots.removeAll()
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
            switch task.pointee.type {
            case REDIS_REPLY_ERROR:
                return collector.place(.value(.error(String(decoding: raw, as: UTF8.self))), task: task)
            case REDIS_REPLY_STATUS:
                return collector.place(.value(.simpleString(String(decoding: raw, as: UTF8.self))), task: task)
            default:
                return collector.placeBulk(raw, task: task)
            }
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
            return collector.place(.value(.integer(Int64(value))), task: task)
        },
        createNil: { task in
            guard let task, let collector = collector(task), collector.charge(0) else {
                return nil
            }
            return collector.place(.value(.null), task: task)
        },
        freeObject: { _ in }
    ))
    return table
}()

import GateCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GateRedis
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The node's `stat.log`: one JSON line per request (what was asked, the answer, this node's
/// local sales at that moment), appended to a file.
///
/// A request only appends a small value to an in-memory batch under a lock; formatting and the
/// `write(2)` happen on a thread of the log's own pool, every `flushInterval`. Nothing waits
/// for the disk. When the disk falls so far behind that `maximumPending` entries are waiting,
/// further entries are counted instead of kept, and the next flush writes one
/// `{"dropped":N}` line so the gap is visible in the file.
public final class StatLog: Sendable {
    /// One request as the log records it.
    public struct Entry: Sendable {
        /// Wall-clock time the response was sent, milliseconds since the Unix epoch.
        public var time: Int64
        /// `buy`, `pay`, `order`, `health`, `stock` or `other`.
        public var route: String
        /// The `X-Account-Id` of the request, if it had one.
        public var account: String?
        /// HTTP status of the answer.
        public var status: Int
        /// The `code` of the JSON answer (1 success, -1 sold out, -2 holds a ticket, …).
        public var code: Int
        /// Tickets this node had taken from its local share when it answered.
        public var localSales: Int
        /// Time from the end of the request to the answer, microseconds.
        public var micros: Int64
        public init(time: Int64, route: String, account: String?, status: Int, code: Int, localSales: Int, micros: Int64) {
            self.time = time
            self.route = route
            self.account = account
            self.status = status
            self.code = code
            self.localSales = localSales
            self.micros = micros
        }
    }

    /// Failure to open or write the log file.
    public struct FileError: Error, CustomStringConvertible {
        public let path: String
        public let operation: String
        public let errno: Int32

        public var description: String {
            "stat log \(self.path): \(self.operation) failed: \(String(cString: strerror(self.errno)))"
        }
    }

    private struct Pending {
        var entries: [Entry] = []
        var dropped = 0
    }

    public let path: String
    private let node: String
    private let descriptor: Int32
    private let maximumPending: Int
    private let pending = Mutex(Pending())
    private let pool: NIOThreadPool
    private let flusher = Mutex<RepeatedTask?>(nil)
    /// The last write handed to the pool: `close` waits for it before closing the file
    /// (cancelling the periodic flush does not wait for a write already handed over).
    private let writing = Mutex<EventLoopFuture<Void>?>(nil)
    private let closedFlag = Atomic<Bool>(false)
    private let failing = Atomic<Bool>(false)
    private let logger: Logger

    /// Opens (creates, appends to) `path` and starts flushing every `flushInterval` on `eventLoop`.
    public init(
        path: String,
        node: String,
        flushInterval: Duration = .milliseconds(200),
        maximumPending: Int = 100_000,
        eventLoop: any EventLoop,
        logger: Logger
    ) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw FileError(path: path, operation: "open", errno: errno)
        }
        self.path = path
        self.node = node
        self.descriptor = descriptor
        self.maximumPending = maximumPending
        self.logger = logger
        self.pool = NIOThreadPool(numberOfThreads: 1)
        self.pool.start()
        let interval = flushInterval.timeAmount
        let task = eventLoop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) { [self] _ in
            self.flush(on: eventLoop).map {
                if self.failing.exchange(false, ordering: .relaxed) {
                    self.logger.info("stat log writes again", metadata: ["path": "\(path)"])
                }
            }.recover { error in
                // Once per failing stretch, not every flush.
                if !self.failing.exchange(true, ordering: .relaxed) {
                    self.logger.error("stat log write failed; entries of failed flushes are lost", metadata: ["error": "\(error)"])
                }
            }
        }
        self.flusher.withLock { $0 = task }
    }

    /// Adds one entry to the next flush. Never blocks on the disk.
    public func record(_ entry: Entry) {
        let limit = self.maximumPending
        self.pending.withLock { pending in
            if pending.entries.count < limit {
                pending.entries.append(entry)
            } else {
                pending.dropped += 1
            }
        }
    }

    /// Writes what is pending now (on the log's own thread); the future completes on `eventLoop`.
    public func flush(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let batch = self.pending.withLock { pending -> Pending in
            let batch = pending
            pending = Pending()
            pending.entries.reserveCapacity(batch.entries.count)
            return batch
        }
        guard !batch.entries.isEmpty || batch.dropped > 0 else {
            return eventLoop.makeSucceededVoidFuture()
        }
        let node = self.node
        let descriptor = self.descriptor
        let path = self.path
        let write = self.pool.runIfActive(eventLoop: eventLoop) {
            var text = ""
            text.reserveCapacity(batch.entries.count * 128 + 64)
            for entry in batch.entries {
                Self.append(entry, node: node, to: &text)
            }
            if batch.dropped > 0 {
                text += "{\"ts\":\(Self.now()),\"node\":\(jsonString(node)),\"dropped\":\(batch.dropped)}\n"
            }
            try Self.writeAll(text, to: descriptor, path: path)
        }
        // The pool has one thread: writes run in order, and the last one ends after the others.
        self.writing.withLock { $0 = write }
        return write
    }

    /// Stops the periodic flush, writes what is left and closes the file. Idempotent.
    public func close(on eventLoop: any EventLoop) async throws {
        guard !self.closedFlag.exchange(true, ordering: .relaxed) else {
            return
        }
        let task = self.flusher.withLock { task in
            defer { task = nil }
            return task
        }
        let cancelled = eventLoop.makePromise(of: Void.self)
        if let task {
            task.cancel(promise: cancelled)
        } else {
            cancelled.succeed()
        }
        try await cancelled.futureResult.get()
        // A periodic flush may still be writing on the pool: let it finish first.
        if let under = self.writing.withLock({ $0 }) {
            _ = try? await under.get()
        }
        let result: Result<Void, any Error>
        do {
            try await self.flush(on: eventLoop).get()
            result = .success(())
        } catch {
            result = .failure(error)
        }
        Self.closeDescriptor(self.descriptor)
        try await self.pool.shutdownGracefully()
        try result.get()
    }

    private static func closeDescriptor(_ descriptor: Int32) {
        #if canImport(Glibc)
        _ = Glibc.close(descriptor)
        #else
        _ = Darwin.close(descriptor)
        #endif
    }

    /// Milliseconds since the Unix epoch.
    public static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000 + Int64(spec.tv_nsec) / 1_000_000
    }

    private static func append(_ entry: Entry, node: String, to text: inout String) {
        text += "{\"ts\":\(entry.time),\"node\":\(jsonString(node)),\"route\":\"\(entry.route)\""
        if let account = entry.account {
            text += ",\"account\":\(jsonString(account))"
        }
        text += ",\"status\":\(entry.status),\"code\":\(entry.code),\"result\":\"\(Self.result(of: entry))\""
        text += ",\"local_sales\":\(entry.localSales),\"us\":\(entry.micros)}\n"
    }

    /// A word for the answer, so the log reads without the code table.
    private static func result(of entry: Entry) -> String {
        switch (entry.route, entry.code) {
        case ("buy", 1): "success"
        case ("buy", -1): "sold_out"
        case ("buy", -2): "already_holds"
        case ("pay", 1): "paid"
        case ("pay", 2): "already_paid"
        case (_, -5): "unavailable"
        case (_, 1): "ok"
        default: "error"
        }
    }

    private static func writeAll(_ text: String, to descriptor: Int32, path: String) throws {
        var text = text
        try text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR {
                        continue
                    }
                    throw FileError(path: path, operation: "write", errno: errno)
                }
                offset += written
            }
        }
    }
}

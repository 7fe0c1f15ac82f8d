#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A log file of one line per event (the ticket node's stat log, the gateway's access log),
/// appended without the event ever waiting for the disk.
///
/// `record` only appends a small value to an in-memory batch under a lock; formatting (`format`)
/// and the `write(2)` happen on the log's own thread every `flushInterval`. When the disk falls
/// so far behind that `maximumPending` entries wait, further entries are counted instead of
/// kept, and the next flush writes `dropped(N)` so the gap is visible in the file.
public final class LineLog<Entry: Sendable>: Sendable {
    /// Failure to open or write the log file.
    public struct FileError: Error, CustomStringConvertible {
        /// What the file is (`stat log`, `access log`).
        public let kind: String
        public let path: String
        public let operation: String
        public let errno: Int32

        public var description: String {
            "\(self.kind) \(self.path): \(self.operation) failed: \(String(cString: strerror(self.errno)))"
        }
    }

    private struct Pending {
        var entries: [Entry] = []
        var dropped = 0
    }

    public let path: String
    private let kind: String
    private let descriptor: Int32
    private let maximumPending: Int
    private let format: @Sendable (Entry, inout String) -> Void
    private let dropped: @Sendable (Int) -> String
    private let pending = Mutex(Pending())
    private let pool: NIOThreadPool
    private let flusher = Mutex<RepeatedTask?>(nil)
    /// The last write handed to the pool: `close` waits for it before closing the file
    /// (cancelling the periodic flush does not wait for a write already handed over).
    private let writing = Mutex<EventLoopFuture<Void>?>(nil)
    private let closedFlag = Atomic<Bool>(false)
    private let failing = Atomic<Bool>(false)
    private let logger: Logger

    /// Opens (creates, appends to) `path` and starts flushing every `flushInterval` on
    /// `eventLoop`. `format` appends one entry's line (with its newline); `dropped` is the line
    /// for N entries that were not kept.
    public init(
        kind: String,
        path: String,
        flushInterval: Duration = .milliseconds(200),
        maximumPending: Int = 100_000,
        eventLoop: any EventLoop,
        logger: Logger,
        format: @escaping @Sendable (Entry, inout String) -> Void,
        dropped: @escaping @Sendable (Int) -> String
    ) throws(FileError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw FileError(kind: kind, path: path, operation: "open", errno: errno)
        }
        self.kind = kind
        self.path = path
        self.descriptor = descriptor
        self.maximumPending = maximumPending
        self.format = format
        self.dropped = dropped
        self.logger = logger
        self.pool = NIOThreadPool(numberOfThreads: 1)
        self.pool.start()
        let interval = TimeAmount.nanoseconds(Int64(flushInterval.components.seconds) * 1_000_000_000 + flushInterval.components.attoseconds / 1_000_000_000)
        let task = eventLoop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) { [self] _ in
            self.flush(on: eventLoop).map {
                if self.failing.exchange(false, ordering: .relaxed) {
                    self.logger.info("\(kind) writes again", metadata: ["path": "\(path)"])
                }
            }.recover { error in
                // Once per failing stretch, not every flush.
                if !self.failing.exchange(true, ordering: .relaxed) {
                    self.logger.error("\(kind) write failed; entries of failed flushes are lost", metadata: ["error": "\(error)"])
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
        let (descriptor, path, kind, format, dropped) = (self.descriptor, self.path, self.kind, self.format, self.dropped)
        let write = self.pool.runIfActive(eventLoop: eventLoop) {
            var text = ""
            text.reserveCapacity(batch.entries.count * 160 + 64)
            for entry in batch.entries {
                format(entry, &text)
            }
            if batch.dropped > 0 {
                text += dropped(batch.dropped)
            }
            try Self.writeAll(text, to: descriptor, path: path, kind: kind)
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

    /// Milliseconds since the Unix epoch.
    public static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000 + Int64(spec.tv_nsec) / 1_000_000
    }

    private static func closeDescriptor(_ descriptor: Int32) {
        #if canImport(Glibc)
        _ = Glibc.close(descriptor)
        #else
        _ = Darwin.close(descriptor)
        #endif
    }

    private static func writeAll(_ text: String, to descriptor: Int32, path: String, kind: String) throws {
        var text = text
        try text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR {
                        continue
                    }
                    throw FileError(kind: kind, path: path, operation: "write", errno: errno)
                }
                offset += written
            }
        }
    }
}

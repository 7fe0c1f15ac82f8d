import GateChannels
import GateCore
import Logging
import NIOCore

/// The node's `stat.log`: one JSON line per request (what was asked, the answer, this node's
/// local sales at that moment), appended to a file.
///
/// Written by a `LineLog` (nothing waits for the disk; entries past `maximumPending` are
/// counted and the file gets one `{"dropped":N}` line for them).
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
    public typealias FileError = LineLog<Entry>.FileError

    private let log: LineLog<Entry>

    public var path: String {
        self.log.path
    }

    /// Opens (creates, appends to) `path` and starts flushing every `flushInterval` on `eventLoop`.
    public init(
        path: String,
        node: String,
        flushInterval: Duration = .milliseconds(200),
        maximumPending: Int = 100_000,
        eventLoop: any EventLoop,
        logger: Logger
    ) throws {
        self.log = try LineLog(
            kind: "stat log", path: path, flushInterval: flushInterval, maximumPending: maximumPending, eventLoop: eventLoop, logger: logger,
            format: { entry, text in Self.append(entry, node: node, to: &text) },
            dropped: { count in "{\"ts\":\(LineLog<Entry>.now()),\"node\":\(jsonString(node)),\"dropped\":\(count)}\n" }
        )
    }

    /// Adds one entry to the next flush. Never blocks on the disk.
    public func record(_ entry: Entry) {
        self.log.record(entry)
    }

    /// Writes what is pending now (on the log's own thread); the future completes on `eventLoop`.
    public func flush(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        self.log.flush(on: eventLoop)
    }

    /// Stops the periodic flush, writes what is left and closes the file. Idempotent.
    public func close(on eventLoop: any EventLoop) async throws {
        try await self.log.close(on: eventLoop)
    }

    /// Milliseconds since the Unix epoch.
    public static func now() -> Int64 {
        LineLog<Entry>.now()
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
}

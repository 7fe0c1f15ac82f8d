import GateChannels
import GateCore
import Logging
import NIOCore

/// The gateway's access log: one JSON line per request — when it ended, the client address,
/// the account, method and target, the route, what the gateway decided and by which rule, the
/// backend, the status and the latencies — written by a `LineLog` (a request never waits for
/// the disk). `spikegate replay --capture` reads these lines back.
///
/// A line: `{"ts":1795000000123,"client":"203.0.113.7","account":"u1","method":"POST",
/// "target":"/buy/ticket","route":"POST /buy/ticket","decision":"forwarded","rule":null,
/// "upstream":"tickets/127.0.0.1:8081","status":200,"us":1830,"upstream_us":1610}`.
final class AccessLog: Sendable {
    struct Entry: Sendable {
        /// Milliseconds since the Unix epoch, when the answer was given.
        var time: Int64
        var client: String
        var account: String?
        var method: String
        var target: String
        /// The route's id (`POST /buy/ticket`), `nil` when none matched or the head was refused.
        var route: String?
        /// `GatewayMetrics.Decision`'s word, or `client_closed`.
        var decision: String
        /// The window rule that refused, challenged or banned, if one did.
        var rule: String?
        /// The backend that answered (`upstream/host:port`), if any.
        var upstream: String?
        /// The status given to the client (499: it left first).
        var status: Int
        /// From the head's arrival to the answer, microseconds.
        var micros: Int64
        /// From admission to the backend's answer head, microseconds.
        var upstreamMicros: Int64?
    }

    private let log: LineLog<Entry>

    init(path: String, eventLoop: any EventLoop, logger: Logger) throws {
        self.log = try LineLog(
            kind: "access log", path: path, eventLoop: eventLoop, logger: logger,
            format: Self.append,
            dropped: { count in "{\"ts\":\(LineLog<Entry>.now()),\"dropped\":\(count)}\n" }
        )
    }

    /// Milliseconds since the Unix epoch.
    static func now() -> Int64 {
        LineLog<Entry>.now()
    }

    func record(_ entry: Entry) {
        self.log.record(entry)
    }

    func close(on eventLoop: any EventLoop) async throws {
        try await self.log.close(on: eventLoop)
    }

    @Sendable
    static func append(_ entry: Entry, to text: inout String) {
        text += "{\"ts\":\(entry.time),\"client\":\(jsonString(entry.client))"
        text += ",\"account\":" + (entry.account.map(jsonString) ?? "null")
        text += ",\"method\":\(jsonString(entry.method)),\"target\":\(jsonString(entry.target))"
        text += ",\"route\":" + (entry.route.map(jsonString) ?? "null")
        text += ",\"decision\":\"\(entry.decision)\",\"rule\":" + (entry.rule.map(jsonString) ?? "null")
        text += ",\"upstream\":" + (entry.upstream.map(jsonString) ?? "null")
        text += ",\"status\":\(entry.status),\"us\":\(entry.micros),\"upstream_us\":" + (entry.upstreamMicros.map(String.init) ?? "null") + "}\n"
    }
}

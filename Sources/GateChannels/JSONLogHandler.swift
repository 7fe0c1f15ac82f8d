#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GateCore
import Logging

/// A swift-log handler that writes one JSON object per event, one line each:
/// `{"ts":"2026-11-22T04:30:01.123Z","level":"info","label":"spikegate.gateway",
/// "source":"GateProxy","msg":"rules active","version":"0d26948aa35c"}` — metadata as members
/// (strings; nested lists and dictionaries as JSON). For log shippers that read JSON lines.
public struct JSONLogHandler: LogHandler {
    /// Where the lines go: standard error by default.
    public typealias Sink = @Sendable (String) -> Void

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let sink: Sink

    public init(label: String, level: Logger.Level = .info, metadataProvider: Logger.MetadataProvider? = nil, sink: @escaping Sink = JSONLogHandler.standardError) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = self.metadata
        if let provided = self.metadataProvider?.get() {
            merged.merge(provided) { _, new in new }
        }
        if let extra = event.metadata {
            merged.merge(extra) { _, new in new }
        }
        var line = "{\"ts\":\"\(Self.timestamp())\",\"level\":\"\(event.level.rawValue)\",\"label\":\(Self.quoted(self.label))"
        line += ",\"source\":\(Self.quoted(event.source)),\"msg\":\(Self.quoted(event.message.description))"
        for key in merged.keys.sorted() where !["ts", "level", "label", "source", "msg"].contains(key) {
            line += ",\(Self.quoted(key)):" + Self.json(merged[key]!)
        }
        line += "}\n"
        self.sink(line)
    }

    /// Writes `line` to standard error in one `write(2)` (lines of concurrent events do not mix).
    public static let standardError: Sink = { line in
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 {
                    if written < 0 && errno == EINTR {
                        continue
                    }
                    return
                }
                offset += written
            }
        }
    }

    static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text):
            return Self.quoted(text)
        case .stringConvertible(let convertible):
            return Self.quoted(convertible.description)
        case .array(let values):
            return "[" + values.map(Self.json).joined(separator: ",") + "]"
        case .dictionary(let members):
            return "{" + members.keys.sorted().map { Self.quoted($0) + ":" + Self.json(members[$0]!) }.joined(separator: ",") + "}"
        }
    }

    static func quoted(_ text: String) -> String {
        jsonString(text)
    }

    /// Now in UTC, RFC 3339 with milliseconds.
    static func timestamp() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = time_t(spec.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = Int(spec.tv_nsec / 1_000_000)
        let ms = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
    }
}

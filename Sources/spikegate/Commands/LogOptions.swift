import ArgumentParser
import GateChannels
import Logging

/// `--log-format text|json` and `--log-level`, shared by the long-running commands.
struct LogOptions: ParsableArguments {
    enum Format: String, ExpressibleByArgument, CaseIterable {
        /// swift-log's lines for a terminal.
        case text
        /// One JSON object per line (`JSONLogHandler`), for log shippers.
        case json
    }

    @Option(help: "Log lines as text or json (one JSON object per line) on standard error.")
    var logFormat: Format = .text

    @Option(help: "Least severe level logged: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    /// Sets the process's log handler (once, before the first logger is made).
    func bootstrap() {
        let (format, level) = (self.logFormat, self.logLevel)
        LoggingSystem.bootstrap { label in
            switch format {
            case .json:
                return JSONLogHandler(label: label, level: level)
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

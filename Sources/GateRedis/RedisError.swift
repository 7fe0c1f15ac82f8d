/// Every failure of the Redis client: one type, compared by `code`, carrying what happened.
///
/// Codes can grow; match on the ones you handle and treat the rest as "Redis unusable". The
/// message says what went wrong and, where it helps, what to do about it; `command` names the
/// command that failed when there was one.
public struct RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case connectionRefused = "connection refused"
            case connectionClosed = "connection closed"
            case timeout
            case serverError = "server error"
            case protocolError = "protocol error"
            case circuitOpen = "circuit open"
            case poolExhausted = "pool exhausted"
            case invalidURL = "invalid URL"
            case unsupportedCommand = "unsupported command"
            case shutdown
        }

        private let base: Base
        private init(_ base: Base) {
            self.base = base
        }

        /// Could not connect (nothing listening, DNS, connect timeout, handshake refused).
        public static let connectionRefused = Code(.connectionRefused)
        /// The connection went away with the command unanswered; it may or may not have run.
        public static let connectionClosed = Code(.connectionClosed)
        /// No reply within the command's timeout; the command may still run on the server.
        public static let timeout = Code(.timeout)
        /// Redis answered with an error reply; `message` holds it.
        public static let serverError = Code(.serverError)
        /// Redis (or whatever answered) broke the RESP protocol; the connection was closed.
        public static let protocolError = Code(.protocolError)
        /// Redis is failing; the client refuses at once instead of waiting for a timeout.
        public static let circuitOpen = Code(.circuitOpen)
        /// Every exclusive connection was busy for longer than the acquire timeout.
        public static let poolExhausted = Code(.poolExhausted)
        /// A Redis URL could not be understood.
        public static let invalidURL = Code(.invalidURL)
        /// The command cannot run where it was sent (a `MULTI` or `BLPOP` on the shared
        /// connection); the message says where it can.
        public static let unsupportedCommand = Code(.unsupportedCommand)
        /// The client was shut down.
        public static let shutdown = Code(.shutdown)

        public var description: String {
            self.base.rawValue
        }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What happened, for people.
    public var message: String
    /// The command that failed, when there was one (arguments shown as `redis-cli` would).
    public var command: String?

    /// Creates an error.
    public init(code: Code, message: String, command: String? = nil) {
        self.code = code
        self.message = message
        self.command = command
    }

    /// A server error reply with Redis's message (`ERR …`, `NOSCRIPT …`, `WRONGTYPE …`).
    public static func server(_ message: String) -> RedisError {
        RedisError(code: .serverError, message: message)
    }

    /// The error's first word for server errors (`NOSCRIPT`, `WRONGTYPE`, `ERR`), else `nil`.
    public var serverErrorPrefix: Substring? {
        guard self.code == .serverError else {
            return nil
        }
        return self.message.split(separator: " ", maxSplits: 1).first
    }

    /// The same error with `command` filled in.
    func with(command: RedisCommand) -> RedisError {
        var copy = self
        copy.command = command.description
        return copy
    }

    public var description: String {
        if let command = self.command {
            return "redis \(self.code): \(self.message) (command: \(command))"
        }
        return "redis \(self.code): \(self.message)"
    }
}

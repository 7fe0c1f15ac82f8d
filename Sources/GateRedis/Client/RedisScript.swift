import Crypto
import NIOCore

/// A Lua script run with `EVALSHA`, its SHA-1 computed here so the first call needs no load.
///
/// When Redis answers `NOSCRIPT` (it restarted, or `SCRIPT FLUSH` ran), the script is loaded
/// with `SCRIPT LOAD` and the `EVALSHA` sent once more, so a Redis restart heals itself. Any
/// other error — including one raised by the script — is passed on unchanged.
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// Lower-case hex SHA-1 of `source`, as Redis names scripts.
    public let sha1: String

    /// Creates a script from its Lua source.
    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    func evalCommand(keys: [String], arguments: [RedisArgument]) -> RedisCommand {
        RedisCommand(
            "EVALSHA",
            arguments: [.string(self.sha1), .integer(Int64(keys.count))] + keys.map { .string($0) } + arguments
        )
    }

    /// `SCRIPT LOAD source`.
    var loadCommand: RedisCommand {
        RedisCommand("SCRIPT", "LOAD", .string(self.source))
    }

    func evaluate(
        keys: [String],
        arguments: [RedisArgument],
        send: @escaping @Sendable (RedisCommand) -> EventLoopFuture<RESPValue>
    ) -> EventLoopFuture<RESPValue> {
        let command = self.evalCommand(keys: keys, arguments: arguments)
        let load = self.loadCommand
        let expected = self.sha1
        let first = send(command)
        return first.flatMapError { error in
            guard let redisError = error as? RedisError, redisError.serverErrorPrefix == "NOSCRIPT" else {
                return first.eventLoop.makeFailedFuture(error)
            }
            return send(load).flatMapThrowing { reply -> Void in
                guard reply.string == expected else {
                    throw RedisError(
                        code: .protocolError,
                        message: "SCRIPT LOAD answered \(reply), expected the SHA-1 \(expected)"
                    )
                }
            }.flatMap {
                send(command)
            }
        }
    }
}

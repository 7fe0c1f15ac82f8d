import Logging
import NIOCore
import Synchronization

/// Finds the current primary through Redis Sentinel, for every new connection of a client whose
/// topology is `sentinel`.
///
/// Each dial asks the sentinels in turn (the one that answered last first) for
/// `SENTINEL GET-MASTER-ADDR-BY-NAME name`, connects to the address named, and checks with
/// `ROLE` that it is a primary: during a fail-over a sentinel may still name the old one, and a
/// demoted primary answers as a replica. A failure fails the dial; the node's back-off and
/// circuit breaker then pace the next try, so a client follows a fail-over by itself once the
/// sentinels have promoted a replica. (Sentinel also closes the clients of a demoted primary,
/// and the client drops a connection that answers `READONLY`.)
final class RedisSentinel: Sendable {
    let sentinels: [RedisEndpoint]
    let primaryName: String
    private let logger: Logger
    /// Index of the sentinel that answered last, and the primary it named.
    private let last = Mutex<(sentinel: Int, primary: RedisEndpoint?)>((0, nil))

    init(sentinels: [RedisEndpoint], primaryName: String, logger: Logger) {
        self.sentinels = sentinels
        self.primaryName = primaryName
        self.logger = logger
    }

    /// Dials the current primary with `configuration` (its credentials and timeouts).
    func connectToPrimary(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        observer: (any RedisConnectionObserver)?
    ) -> EventLoopFuture<RedisConnection> {
        self.primary(configuration: configuration, on: eventLoop).flatMap { primary in
            var direct = configuration
            direct.endpoint = primary
            direct.topology = .single
            return RedisConnection.connect(configuration: direct, eventLoop: eventLoop, observer: observer).flatMap { connection in
                let deadline = NIODeadline.now() + configuration.connectTimeout.timeAmount
                return connection.send(RedisCommand("ROLE"), deadline: deadline).flatMapThrowing { reply -> RedisConnection in
                    guard reply.array?.first?.string == "master" else {
                        connection.close()
                        throw RedisError(
                            code: .connectionRefused,
                            message: "Sentinel named \(primary) as the primary of '\(self.primaryName)', but it answers ROLE as \(reply.array?.first?.string ?? "\(reply)") (fail-over under way?)"
                        )
                    }
                    return connection
                }.flatMapErrorThrowing { error in
                    connection.close()
                    throw error
                }
            }
        }
    }

    /// Asks the sentinels, in turn, for the primary's address.
    private func primary(configuration: RedisConfiguration, on eventLoop: any EventLoop) -> EventLoopFuture<RedisEndpoint> {
        let start = self.last.withLock { $0.sentinel }
        let order = (0..<self.sentinels.count).map { (start + $0) % self.sentinels.count }
        return self.ask(order[...], configuration: configuration, failures: [], on: eventLoop)
    }

    private func ask(
        _ order: ArraySlice<Int>,
        configuration: RedisConfiguration,
        failures: [String],
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<RedisEndpoint> {
        guard let index = order.first else {
            return eventLoop.makeFailedFuture(RedisError(
                code: .connectionRefused,
                message: "no sentinel named the primary of '\(self.primaryName)': \(failures.joined(separator: "; "))"
            ))
        }
        let sentinel = self.sentinels[index]
        // Sentinels are asked without the data's credentials and database.
        var asking = configuration
        asking.endpoint = sentinel
        asking.topology = .single
        asking.username = nil
        asking.password = nil
        asking.database = 0
        let deadline = NIODeadline.now() + configuration.connectTimeout.timeAmount
        return RedisConnection.connect(configuration: asking, eventLoop: eventLoop, observer: nil).flatMap { connection in
            connection.send(RedisCommand("SENTINEL", "GET-MASTER-ADDR-BY-NAME", .string(self.primaryName)), deadline: deadline).always { _ in
                connection.close()
            }
        }.flatMapThrowing { reply -> RedisEndpoint in
            guard let fields = reply.array, fields.count == 2, let host = fields[0].string, let port = fields[1].string.flatMap({ Int($0) }) else {
                throw RedisError(code: .protocolError, message: "\(sentinel) does not know '\(self.primaryName)' (answered \(reply))")
            }
            let primary = RedisEndpoint.tcp(host: host, port: port)
            let previous = self.last.withLock { last -> RedisEndpoint? in
                defer { last = (index, primary) }
                return last.primary
            }
            if previous != primary {
                self.logger.notice("redis primary from sentinel", metadata: [
                    "primary": "\(primary)", "name": "\(self.primaryName)", "sentinel": "\(sentinel)",
                    "previous": "\(previous.map { "\($0)" } ?? "-")",
                ])
            }
            return primary
        }.flatMapError { error in
            self.ask(order.dropFirst(), configuration: configuration, failures: failures + ["\(sentinel): \(error)"], on: eventLoop)
        }
    }
}

import GateRedis
import GateTestSupport
import NIOCore
import NIOPosix

/// Runs `body` with a `RedisClient` for `url` on its own event-loop group, shut down afterwards.
///
/// Tests use generous timeouts unless they test timeouts: a debug build on a busy two-core
/// machine must not turn a slow reply into a false failure.
func withClient<Result: Sendable>(
    url: String,
    threads: Int = 1,
    configure: (inout RedisConfiguration) -> Void = { _ in },
    _ body: (RedisClient, MultiThreadedEventLoopGroup) async throws -> Result
) async throws -> Result {
    var configuration = try RedisConfiguration(url: url)
    configuration.commandTimeout = .seconds(5)
    configuration.acquireTimeout = .seconds(5)
    configure(&configuration)
    return try await RedisClient.withClient(configuration: configuration, threads: threads, body)
}

/// The `RedisError` a call threw, or `nil` when it did not throw one.
func redisError<Value>(_ body: () async throws -> Value) async -> RedisError? {
    do {
        _ = try await body()
        return nil
    } catch let error as RedisError {
        return error
    } catch {
        return nil
    }
}

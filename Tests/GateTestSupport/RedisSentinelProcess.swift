import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real Sentinel set-up for a test: a primary and `replicas` replicas (`redis-server
/// --replicaof`), watched by `sentinels` sentinels (`redis-server sentinel.conf --sentinel`,
/// quorum 2, the primary judged down after 2 s — with 1 s a busy two-core machine saw a
/// spurious second fail-over), all on free loopback ports; `start` returns once every sentinel
/// knows every replica and the other sentinels.
public final class RedisSentinelProcess: @unchecked Sendable {
    public static let name = "sale"

    public let primary: RedisServerProcess
    public let replicas: [RedisServerProcess]
    private let sentinels: [(process: Process, port: Int, directory: URL)]

    private init(primary: RedisServerProcess, replicas: [RedisServerProcess], sentinels: [(process: Process, port: Int, directory: URL)]) {
        self.primary = primary
        self.replicas = replicas
        self.sentinels = sentinels
    }

    /// `redis-sentinel://` with every sentinel and the primary's name.
    public var url: String {
        "redis-sentinel://" + self.sentinels.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") + "/\(Self.name)"
    }

    /// Every data server, the primary first.
    public var servers: [RedisServerProcess] {
        [self.primary] + self.replicas
    }

    public static func start(replicas replicaCount: Int = 2, sentinels sentinelCount: Int = 3, arguments: [String] = []) async throws -> RedisSentinelProcess {
        // Full syncs start at once (the default waits 5 s), on whichever server is primary.
        let arguments = ["--repl-diskless-sync-delay", "0"] + arguments
        let primary = try await RedisServerProcess.start(arguments: arguments)
        var replicas: [RedisServerProcess] = []
        var sentinels: [(process: Process, port: Int, directory: URL)] = []
        do {
            for _ in 0..<replicaCount {
                replicas.append(try await RedisServerProcess.start(arguments: arguments + ["--replicaof", "127.0.0.1", "\(primary.port)"]))
            }
            for _ in 0..<sentinelCount {
                let port = try freeLoopbackPort()
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spikegate-sentinel-\(UUID().uuidString.prefix(8))")
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                let configuration = directory.appendingPathComponent("sentinel.conf")
                try """
                    port \(port)
                    bind 127.0.0.1
                    daemonize no
                    dir \(directory.path)
                    sentinel monitor \(Self.name) 127.0.0.1 \(primary.port) 2
                    sentinel down-after-milliseconds \(Self.name) 2000
                    sentinel failover-timeout \(Self.name) 4000
                    sentinel parallel-syncs \(Self.name) 1

                    """.write(to: configuration, atomically: true, encoding: .utf8)
                let process = try launchProcess(
                    executable: try RedisServerProcess.binary(),
                    arguments: [configuration.path, "--sentinel"],
                    output: directory.appendingPathComponent("sentinel.log")
                )
                sentinels.append((process, port, directory))
            }
            let setup = RedisSentinelProcess(primary: primary, replicas: replicas, sentinels: sentinels)
            try await setup.waitUntilWatched()
            return setup
        } catch {
            for sentinel in sentinels {
                Self.kill(sentinel.process)
                try? FileManager.default.removeItem(at: sentinel.directory)
            }
            replicas.forEach { $0.stop() }
            primary.stop()
            throw error
        }
    }

    /// `redis-cli -p PORT arguments…`, trimmed.
    @discardableResult
    public func cli(_ port: Int, _ arguments: [String]) async throws -> String {
        let output = try await runProgram("redis-cli", ["-p", "\(port)"] + arguments, timeout: .seconds(30))
        guard output.status == 0 else {
            throw TestSupportError("redis-cli -p \(port) \(arguments.joined(separator: " ")): \(output.standardError)")
        }
        return output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Waits (up to 30 s) until every sentinel lists every replica and the other sentinels.
    public func waitUntilWatched() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        for sentinel in self.sentinels {
            while true {
                let replicas = try await self.cli(sentinel.port, ["sentinel", "replicas", Self.name])
                let others = try await self.cli(sentinel.port, ["sentinel", "sentinels", Self.name])
                // redis-cli prints each field on its own line: one "name" per entry.
                let knownReplicas = replicas.split(separator: "\n").filter { $0 == "name" }.count
                let knownSentinels = others.split(separator: "\n").filter { $0 == "name" }.count
                if knownReplicas >= self.replicas.count && knownSentinels >= self.sentinels.count - 1 && !replicas.contains("s_down") {
                    break
                }
                guard ContinuousClock.now < deadline else {
                    throw TestSupportError("the sentinels did not see every replica and each other within 30 s: \(replicas) / \(others)")
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// The port of the primary the first sentinel names now.
    public func primaryPort() async throws -> Int {
        let answer = try await self.cli(self.sentinels[0].port, ["sentinel", "get-master-addr-by-name", Self.name])
        guard let port = answer.split(separator: "\n").last.flatMap({ Int($0) }) else {
            throw TestSupportError("the sentinel answered \(answer)")
        }
        return port
    }

    /// Waits (up to 30 s) until the sentinels name a primary other than `port` and it answers
    /// `ROLE` as master; its port.
    public func waitForFailover(from port: Int) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let current = try await self.primaryPort()
            if current != port, (try? await self.cli(current, ["role"]))?.hasPrefix("master") == true {
                return current
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSupportError("no fail-over from :\(port) within 30 s")
    }

    private static func kill(_ process: Process) {
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
        }
        waitForExit(of: process)
    }

    /// Stops every sentinel and server.
    public func stop() {
        for sentinel in self.sentinels {
            Self.kill(sentinel.process)
            try? FileManager.default.removeItem(at: sentinel.directory)
        }
        self.replicas.forEach { $0.stop() }
        self.primary.stop()
    }
}

import Foundation

/// A real Redis Cluster for a test: `primaries` `redis-server --cluster-enabled yes` processes
/// on free loopback ports, joined with `redis-cli --cluster create` (no replicas), every slot
/// served before `start` returns. Slots are moved by hand (`migrate`), as `redis-cli --cluster
/// reshard` does it, so a test can move exactly the slot it cares about while traffic runs.
public final class RedisClusterProcess: @unchecked Sendable {
    public let servers: [RedisServerProcess]

    private init(servers: [RedisServerProcess]) {
        self.servers = servers
    }

    /// `redis-cluster://` with every node as a seed.
    public var url: String {
        "redis-cluster://" + self.servers.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
    }

    /// Starts the nodes and creates the cluster (up to 30 s until every node says `cluster_state:ok`).
    public static func start(primaries: Int = 3) async throws -> RedisClusterProcess {
        var servers: [RedisServerProcess] = []
        do {
            for _ in 0..<primaries {
                servers.append(try await RedisServerProcess.start(arguments: [
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
                ]))
            }
            let cluster = RedisClusterProcess(servers: servers)
            let created = try await runProgram(
                "redis-cli",
                ["--cluster", "create"] + servers.map { "127.0.0.1:\($0.port)" } + ["--cluster-replicas", "0", "--cluster-yes"],
                timeout: .seconds(60)
            )
            guard created.status == 0 else {
                throw TestSupportError("redis-cli --cluster create failed (\(created.status)): \(created.standardOutput) \(created.standardError)")
            }
            try await cluster.waitUntilServed()
            return cluster
        } catch {
            servers.forEach { $0.stop() }
            throw error
        }
    }

    /// Runs `redis-cli -p PORT arguments…` and returns what it printed (trimmed); throws on a
    /// failed run or an `(error)` answer.
    @discardableResult
    public func cli(_ port: Int, _ arguments: [String]) async throws -> String {
        let output = try await runProgram("redis-cli", ["-p", "\(port)"] + arguments, timeout: .seconds(30))
        let printed = output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        guard output.status == 0, !printed.hasPrefix("ERR"), !printed.hasPrefix("(error)") else {
            throw TestSupportError("redis-cli -p \(port) \(arguments.joined(separator: " ")): \(printed) \(output.standardError)")
        }
        return printed
    }

    /// Waits until every node reports every slot served (`cluster_state:ok`).
    public func waitUntilServed() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        for server in self.servers {
            while try await !self.cli(server.port, ["cluster", "info"]).contains("cluster_state:ok") {
                guard ContinuousClock.now < deadline else {
                    throw TestSupportError("the Redis Cluster did not reach cluster_state:ok within 30 s")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// The node id of the server on `port`.
    public func nodeID(_ port: Int) async throws -> String {
        try await self.cli(port, ["cluster", "myid"])
    }

    /// The port of the primary serving `slot`, as the node on the first port sees it.
    public func owner(ofSlot slot: Int) async throws -> Int {
        let lines = try await self.cli(self.servers[0].port, ["cluster", "nodes"]).split(separator: "\n")
        for line in lines {
            let fields = line.split(separator: " ")
            guard fields.count > 8, fields[2].contains("master") else {
                continue
            }
            for range in fields[8...] {
                let bounds = range.split(separator: "-").compactMap { Int($0) }
                if (bounds.count == 1 && bounds[0] == slot) || (bounds.count == 2 && (bounds[0]...bounds[1]).contains(slot)),
                    let address = fields[1].split(separator: "@").first, let port = address.split(separator: ":").last.flatMap({ Int($0) })
                {
                    return port
                }
            }
        }
        throw TestSupportError("no primary serves slot \(slot)")
    }

    /// The steps of a slot migration, for tests that act between them.
    public enum MigrationStep: Sendable {
        /// `IMPORTING` on the target and `MIGRATING` on the source are set; no key moved yet.
        case marked
        /// Every key is on the target; the source answers `ASK` for the slot.
        case keysMoved
    }

    /// Moves `slot` to the primary on port `target` as `redis-cli --cluster reshard` does:
    /// mark it importing/migrating, `MIGRATE` its keys (all of them in one command, so a
    /// multi-key script never sees half of them), then give the slot to the target on every
    /// node. `between` runs after each step (tests send traffic there).
    public func migrate(slot: Int, to target: Int, between: (MigrationStep) async throws -> Void = { _ in }) async throws {
        let source = try await self.owner(ofSlot: slot)
        guard source != target else {
            return
        }
        let sourceID = try await self.nodeID(source)
        let targetID = try await self.nodeID(target)
        try await self.cli(target, ["cluster", "setslot", "\(slot)", "importing", sourceID])
        try await self.cli(source, ["cluster", "setslot", "\(slot)", "migrating", targetID])
        try await between(.marked)
        while true {
            let keys = try await self.cli(source, ["cluster", "getkeysinslot", "\(slot)", "1000"])
                .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
            guard !keys.isEmpty else {
                break
            }
            try await self.cli(source, ["migrate", "127.0.0.1", "\(target)", "", "0", "5000", "replace", "keys"] + keys)
        }
        try await between(.keysMoved)
        try await self.cli(target, ["cluster", "setslot", "\(slot)", "node", targetID])
        try await self.cli(source, ["cluster", "setslot", "\(slot)", "node", targetID])
        for server in self.servers where server.port != source && server.port != target {
            try await self.cli(server.port, ["cluster", "setslot", "\(slot)", "node", targetID])
        }
    }

    /// Stops every node.
    public func stop() {
        self.servers.forEach { $0.stop() }
    }
}

/// Runs `body` with a fresh Redis Cluster, stopped afterwards whatever happens.
public func withRedisCluster<Result>(primaries: Int = 3, _ body: (RedisClusterProcess) async throws -> Result) async throws -> Result {
    let cluster = try await RedisClusterProcess.start(primaries: primaries)
    do {
        let result = try await body(cluster)
        cluster.stop()
        return result
    } catch {
        cluster.stop()
        throw error
    }
}

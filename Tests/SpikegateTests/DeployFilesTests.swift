import Foundation
import GateRedis
import GateTestSupport
import Testing

/// The files of `Deploy/` are checked by the tools that will read them: systemd, redis-server,
/// HAProxy and keepalived.
@Suite("Deploy files", .timeLimit(.minutes(2)))
struct DeployFilesTests {
    static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Deploy")

    /// A fresh temporary directory, removed after `body`.
    private func withDirectory<Result>(_ body: (URL) async throws -> Result) async throws -> Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spikegate-deploy-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await body(directory)
    }

    @Test("the systemd units pass systemd-analyze verify without a warning")
    func systemdUnits() async throws {
        try await withDirectory { directory in
            // The units name /usr/local/bin/spikegate, which systemd checks exists: point them at
            // the binary just built.
            let binary = try SpikegateBinary.path()
            for name in ["spikegate-gateway.service", "spikegate-ticket-node@.service"] {
                let text = try String(contentsOf: Self.deploy.appendingPathComponent("systemd/\(name)"), encoding: .utf8)
                #expect(text.contains("ExecStart=/usr/local/bin/spikegate "), "\(name)")
                #expect(text.contains("NoNewPrivileges=yes") && text.contains("ProtectSystem=strict"), "\(name) is hardened")
                try text.replacingOccurrences(of: "/usr/local/bin/spikegate", with: binary)
                    .write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
            }
            // A template is verified through an instance of it.
            let units = ["spikegate-gateway.service", "spikegate-ticket-node@1.service"].map { directory.appendingPathComponent($0).path }
            let output = try await runProgram("systemd-analyze", ["verify"] + units)
            #expect(output.status == 0, "\(output.standardError)")
            #expect(output.standardError.isEmpty && output.standardOutput.isEmpty, "systemd-analyze warned: \(output.standardError)")

            // The check can fail: an unknown key is reported.
            let broken = directory.appendingPathComponent("spikegate-gateway.service")
            try (try String(contentsOf: broken, encoding: .utf8) + "\n[Service]\nProtectSystm=strict\n").write(to: broken, atomically: true, encoding: .utf8)
            let refused = try await runProgram("systemd-analyze", ["verify", broken.path])
            #expect(refused.standardError.contains("Unknown key 'ProtectSystm'"), "\(refused.standardError)")
        }
    }

    @Test("redis-server starts with the sale's config: AOF, no eviction, and no write without a replica")
    func redisConfig() async throws {
        let secret = "deploy-test-secret-0123456789"
        // Loopback instead of the example's private address; everything else as shipped.
        try await withRedisServer(
            configFile: Self.deploy.appendingPathComponent("redis/sale.conf").path,
            arguments: ["--bind", "127.0.0.1", "--requirepass", secret]
        ) { server in
            let url = server.url.replacingOccurrences(of: "redis://", with: "redis://:\(secret)@")
            try await RedisClient.withClient(configuration: try RedisConfiguration(url: url + "?timeout=5s")) { redis, _ in
                try await redis.connect()
                for (key, value) in [
                    ("appendonly", "yes"), ("appendfsync", "everysec"), ("maxmemory-policy", "noeviction"),
                    ("min-replicas-to-write", "1"), ("min-replicas-max-lag", "10"),
                ] {
                    let reply = try await redis.send("CONFIG", "GET", .string(key))
                    #expect(reply.array?.last?.string == value, "\(key): \(reply)")
                }
                // No replica connected: the primary refuses to sell alone.
                await #expect {
                    _ = try await redis.send("SET", "k", "v")
                } throws: { error in
                    "\(error)".contains("NOREPLICAS")
                }
                // FLUSHALL is renamed away.
                await #expect(throws: RedisError.self) { _ = try await redis.send("FLUSHALL") }
            }
        }
    }

    @Test("redis-server runs the Sentinel config: it watches the primary named 'sale'")
    func sentinelConfig() async throws {
        try await withDirectory { directory in
            // Sentinel rewrites its file: a copy, its `dir` here (read before the options below
            // apply, it must exist), on a free port and loopback.
            let text = try String(contentsOf: Self.deploy.appendingPathComponent("redis/sentinel.conf"), encoding: .utf8)
            #expect(text.contains("\ndir /var/lib/redis\n"))
            let copy = directory.appendingPathComponent("sentinel.conf")
            try text.replacingOccurrences(of: "\ndir /var/lib/redis\n", with: "\ndir \(directory.path)\n").write(to: copy, atomically: true, encoding: .utf8)
            let port = try freeLoopbackPort()
            let sentinel = try SpikegateProcess.launch("redis-server", [copy.path, "--sentinel", "--port", "\(port)", "--bind", "127.0.0.1"])
            defer { sentinel.kill() }
            // Asked over RESP, not with redis-cli in a loop: starting programs from many tests at
            // once is what swift-corelibs-foundation's Process.run crashes on.
            var configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(port)")
            configuration.commandTimeout = .seconds(2)
            let masters = try await RedisClient.withClient(configuration: configuration) { client, _ in
                var reply = ""
                _ = try await eventually(attempts: 250) {
                    reply = "\((try? await client.send("SENTINEL", "MASTERS")) ?? .null)"
                    return reply.contains("sale")
                }
                return reply
            }
            #expect(masters.contains("sale") && masters.contains("10.0.2.10"), "\(masters) \(sentinel.printed)")
        }
    }

    @Test("haproxy -c accepts the HAProxy example, and refuses a broken copy")
    func haproxyConfig() async throws {
        let file = Self.deploy.appendingPathComponent("haproxy/haproxy-tcp.cfg")
        let output = try await runProgram("haproxy", ["-c", "-f", file.path])
        #expect(output.status == 0, "\(output.standardOutput)\(output.standardError)")
        #expect(!(output.standardOutput + output.standardError).contains("WARNING"), "\(output.standardError)")
        #expect(try String(contentsOf: file, encoding: .utf8).contains("send-proxy-v2"))
        try await withDirectory { directory in
            let broken = directory.appendingPathComponent("broken.cfg")
            try (try String(contentsOf: file, encoding: .utf8)).replacingOccurrences(of: "balance leastconn", with: "balance sideways")
                .write(to: broken, atomically: true, encoding: .utf8)
            #expect(try await runProgram("haproxy", ["-c", "-f", broken.path]).status != 0)
        }
    }

    @Test("keepalived --config-test accepts the LVS example, and refuses a broken copy")
    func keepalivedConfig() async throws {
        let file = Self.deploy.appendingPathComponent("keepalived/keepalived.conf")
        let output = try await runProgram("keepalived", ["--config-test", "--use-file", file.path])
        #expect(output.status == 0, "\(output.standardOutput)\(output.standardError)")
        try await withDirectory { directory in
            let broken = directory.appendingPathComponent("broken.conf")
            try (try String(contentsOf: file, encoding: .utf8)).replacingOccurrences(of: "lb_kind DR", with: "lb_kind SIDEWAYS")
                .write(to: broken, atomically: true, encoding: .utf8)
            #expect(try await runProgram("keepalived", ["--config-test", "--use-file", broken.path]).status != 0)
        }
    }
}

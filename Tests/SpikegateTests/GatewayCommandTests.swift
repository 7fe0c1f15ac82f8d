import Foundation
import GateTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@Suite("spikegate gateway", .timeLimit(.minutes(1)))
struct GatewayCommandTests {
    static func rules(port: Int) -> String {
        "upstreams:\n  tickets:\n    backends:\n      - address: 127.0.0.1:\(port)\n    slow_start: 0s\nroutes:\n  - prefix: /\n    upstream: tickets\n"
    }

    @Test("a gateway process proxies, reloads edited rules (keeping the old ones on a bad edit) and drains on SIGTERM")
    func realProcess() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let first = try await TestBackend.start(name: "first", group: group)
        let second = try await TestBackend.start(name: "second", group: group)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spikegate-gw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("upstreams.yaml")
        try Self.rules(port: first.port).write(to: file, atomically: true, encoding: .utf8)
        let port = try freeLoopbackPort()
        let adminPort = try freeLoopbackPort()
        let gateway = try SpikegateProcess.start([
            "gateway", "--listen", "127.0.0.1:\(port)", "--admin", "127.0.0.1:\(adminPort)", "--rules", directory.path, "--threads", "1",
            "--log-format", "json",
        ])
        defer {
            gateway.kill()
            try? FileManager.default.removeItem(at: directory)
        }
        // As a load balancer does: traffic once /readyz says so (the warm-up gate opens when the
        // backend has passed its first health check).
        let up = try await eventually {
            guard let admin = try? await HTTPTestConnection.connect(port: adminPort, group: group) else {
                return false
            }
            defer { Task { await admin.close() } }
            return try await admin.request(.GET, "/readyz").status == 200
        }
        #expect(up, "the gateway never became ready: \(gateway.printed)")
        let http = try await HTTPTestConnection.connect(port: port, group: group)
        let proxied = try await http.request(.GET, "/x")
        #expect(proxied.body == "first")

        let admin = try await HTTPTestConnection.connect(port: adminPort, group: group)
        let health = try await admin.request(.GET, "/healthz")
        #expect(health.status == 200)
        let ready = try await admin.request(.GET, "/readyz")
        #expect(ready.status == 200, "\(ready.body)")
        let rules = try await admin.request(.GET, "/rules")
        #expect(rules.body.contains("127.0.0.1:\(first.port)"))

        // A bad edit is refused and reported; the old rules keep routing.
        try "upstreams:\n  tickets:\n    backends: []\n".write(to: file, atomically: true, encoding: .utf8)
        let refused = try await eventually {
            let page = try await admin.request(.GET, "/rules")
            return page.body.contains("\"last_error\" : \"") && page.body.contains("upstreams.yaml")
        }
        #expect(refused)
        let stillFirst = try await http.request(.GET, "/x")
        #expect(stillFirst.body == "first")

        // A good edit moves the traffic.
        try Self.rules(port: second.port).write(to: file, atomically: true, encoding: .utf8)
        let moved = try await eventually {
            try await http.request(.GET, "/x").body == "second"
        }
        #expect(moved)

        // SIGTERM: a request in flight still gets its answer, then the process exits 0.
        async let slow = http.request(.POST, "/slow/800", body: "{}")
        let arrived = try await eventually { second.paths.contains("/slow/800") }
        #expect(arrived)
        gateway.send(signal: SIGTERM)
        let answer = try await slow
        #expect(answer.status == 200, "\(answer.body)")
        let status = try await gateway.waitForExit(timeout: .seconds(15))
        #expect(status == 0, "\(gateway.printed)")
        // --log-format json: every log event one JSON object per line.
        let events = gateway.printed.split(separator: "\n").filter { $0.hasPrefix("{") }
        let messages = events.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["msg"] as? String
        }
        #expect(!events.isEmpty && messages.count == events.count, "\(gateway.printed)")
        #expect(messages.contains("rules active") && messages.contains("stopped"), "\(messages)")

        await admin.close()
        await first.stop()
        await second.stop()
        try await group.shutdownGracefully()
    }

    @Test("a missing config file or rules directory is an error naming it")
    func badStart() async throws {
        let missing = try await SpikegateBinary.run(["gateway", "--config", "/nonexistent/gateway.yaml"])
        #expect(missing.status != 0)
        #expect(missing.standardError.contains("/nonexistent/gateway.yaml"), "\(missing.standardError)")
        let noRules = try await SpikegateBinary.run(["gateway", "--listen", "127.0.0.1:0", "--rules", "/nonexistent/rules"])
        #expect(noRules.status != 0)
        #expect(noRules.standardError.contains("/nonexistent/rules"), "\(noRules.standardError)")
    }
}

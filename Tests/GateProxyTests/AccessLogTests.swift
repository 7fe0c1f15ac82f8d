import Foundation
import GateCore
import GateProxy
import GateRules
import GateTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// The access log: one JSON line per request, whatever became of it.
@Suite("access log", .timeLimit(.minutes(1)))
struct AccessLogTests {
    @Test("forwarded, no route, refused head, rate-limited and a client that left: one line each, with what the gateway knew")
    func oneLinePerRequest() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("access-\(UUID().uuidString.prefix(8)).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let routes = "  - prefix: /buy/\n    upstream: tickets\n    windows: [w]\n  - prefix: /api/\n    upstream: tickets\n  - prefix: /slow/\n    upstream: tickets\n"
        let extra = "identity:\n  header: X-Account-Id\n  trust: clients\nwindows:\n  w: {length: 10s, limit_above: 1}\n"
        var backendPort = 0
        try await GatewayHarness.with(weights: [1], routes: routes, extra: extra, configure: { $0.accessLog = path }) { harness in
            backendPort = harness.backends[0].port
            let client = try await harness.connect(from: "127.0.7.1")
            #expect(try await client.request(.GET, "/api/x?q=1", headers: [("X-Account-Id", "alice")]).status == 200)
            #expect(try await client.request(.GET, "/nowhere").status == 404)
            #expect(try await client.request(.POST, "/buy/t", headers: [("X-Account-Id", "bob")]).status == 200)
            #expect(try await client.request(.POST, "/buy/t", headers: [("X-Account-Id", "bob")]).status == 429)
            let smuggled = try await harness.raw([Array("POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".utf8)])
            #expect(smuggled.status == 400)
            // A client that goes away while its request is at the backend.
            let leaving = try await harness.connect(from: "127.0.7.2")
            let slow = Task { try? await leaving.request(.GET, "/slow/400") }
            let arrived = try await eventually { harness.backends[0].paths.contains("/slow/400") }
            #expect(arrived)
            await leaving.close()
            _ = await slow.value
            await client.close()
        }
        // The gateway has drained and closed the log.
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let entries = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], "\($0)") }
        #expect(entries.count == 6, "\(lines)")
        func entry(_ target: String, _ decision: String) -> [String: Any]? {
            entries.first { $0["target"] as? String == target && $0["decision"] as? String == decision }
        }
        let forwarded = try #require(entry("/api/x?q=1", "forwarded"))
        #expect(forwarded["client"] as? String == "127.0.7.1")
        #expect(forwarded["account"] as? String == "alice")
        #expect(forwarded["method"] as? String == "GET")
        #expect(forwarded["route"] as? String == "* /api/*")
        #expect(forwarded["upstream"] as? String == "tickets/127.0.0.1:\(backendPort)")
        #expect(forwarded["status"] as? Int == 200)
        #expect((forwarded["us"] as? Int ?? -1) >= 0 && (forwarded["upstream_us"] as? Int ?? -1) >= 0)
        let noRoute = try #require(entry("/nowhere", "no_route"))
        #expect(noRoute["status"] as? Int == 404 && noRoute["route"] is NSNull && noRoute["upstream"] is NSNull)
        let limited = try #require(entry("/buy/t", "rate_limited"))
        #expect(limited["status"] as? Int == 429 && limited["rule"] as? String == "w" && limited["account"] as? String == "bob")
        #expect(entry("/buy/t", "forwarded")?["rule"] is NSNull)
        let refused = try #require(entries.first { $0["decision"] as? String == "refused" })
        #expect(refused["status"] as? Int == 400 && refused["method"] as? String == "POST")
        let left = try #require(entry("/slow/400", "client_closed"))
        #expect(left["status"] as? Int == 499 && left["client"] as? String == "127.0.7.2")
    }

    @Test("an access log that cannot be opened stops the gateway's start with the path and the reason")
    func unwritablePath() async throws {
        let missing = "/nonexistent-\(UUID().uuidString.prefix(8))/access.log"
        let error = await #expect(throws: GatewayStartError.self) {
            try await GatewayHarness.with(weights: [1], configure: { $0.accessLog = missing }) { _ in }
        }
        #expect(error?.message.contains(missing) == true && error?.message.contains("No such file") == true, "\(String(describing: error))")
    }
}

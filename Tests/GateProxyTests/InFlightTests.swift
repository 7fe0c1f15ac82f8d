import Foundation
import GateCore
import GateProxy
import GateRules
import GateTestSupport
import NIOCore
import NIOHTTP1
import Prometheus
import Testing

/// One request in flight per account, enforced by a real gateway in front of a slow backend.
@Suite struct InFlightTests {
    /// Identity from any client (as in the demo), a purchase route to slow paths.
    static let clientIdentity = "identity:\n  header: X-Account-Id\n  trust: clients\n"
    static let purchaseRoutes = "  - prefix: /slow/\n    upstream: tickets\n    purchase: true\n  - prefix: /\n    upstream: tickets\n"

    /// Sends `count` requests for `account` at once, each on its own connection; returns the
    /// statuses and bodies.
    private static func burst(_ harness: GatewayHarness, account: String, path: String, count: Int) async throws -> [(status: Int, body: String)] {
        try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for _ in 0..<count {
                group.addTask {
                    let connection = try await harness.connect()
                    defer { Task { await connection.close() } }
                    let response = try await connection.request(.POST, path, headers: [("X-Account-Id", account)], body: "{}")
                    return (response.status, response.body)
                }
            }
            var results: [(status: Int, body: String)] = []
            for try await result in group {
                results.append(result)
            }
            return results
        }
    }

    @Test func parallelRequestsOfOneAccountGetOneThroughAndTheRest429() async throws {
        try await GatewayHarness.with(weights: [1], routes: Self.purchaseRoutes, extra: Self.clientIdentity) { harness in
            let results = try await Self.burst(harness, account: "bot-1", path: "/slow/2000", count: 20)
            let statuses = results.map(\.status)
            #expect(statuses.filter { $0 == 200 }.count == 1, "\(statuses)")
            #expect(statuses.filter { $0 == 429 }.count == 19, "\(statuses)")
            let refusalBodies = Set(results.compactMap { $0.status == 429 ? $0.body : nil })
            #expect(refusalBodies == [#"{"code":-4,"reason":"request in flight"}"#])
            #expect(harness.backends[0].requests == 1)
            // The flag went with the answer: the account may buy again.
            let connection = try await harness.connect()
            let again = try await connection.request(.POST, "/slow/1", headers: [("X-Account-Id", "bot-1")])
            #expect(again.status == 200)
            // Routes without the rule are not limited.
            let free = try await Self.burst(harness, account: "bot-1", path: "/other", count: 5)
            #expect(free.allSatisfy { $0.status == 200 })
        }
    }

    @Test func differentAccountsAreIndependent() async throws {
        try await GatewayHarness.with(weights: [1], routes: Self.purchaseRoutes, extra: Self.clientIdentity) { harness in
            let results = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        let connection = try await harness.connect()
                        defer { Task { await connection.close() } }
                        return try await connection.request(.POST, "/slow/200", headers: [("X-Account-Id", "user-\(index)")]).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results == Array(repeating: 200, count: 8))
        }
    }

    @Test func theFlagIsGivenBackWhenTheClientGoesAway() async throws {
        try await GatewayHarness.with(weights: [1], routes: Self.purchaseRoutes, extra: Self.clientIdentity) { harness in
            // A request that would take 3 s, abandoned after it reached the backend.
            let abandoned = try await harness.connect()
            let pending = Task { try? await abandoned.request(.POST, "/slow/3000", headers: [("X-Account-Id", "alice")]) }
            let arrived = try await eventually { harness.backends[0].requests == 1 }
            #expect(arrived)
            let second = try await harness.connect()
            #expect(try await second.request(.POST, "/slow/1", headers: [("X-Account-Id", "alice")]).status == 429)
            await abandoned.close()
            _ = await pending.value
            let freed = try await eventually {
                (try? await second.request(.POST, "/slow/1", headers: [("X-Account-Id", "alice")]).status) == 200
            }
            #expect(freed)
        }
    }

    @Test func theFlagIsGivenBackWhenTheBackendTimesOut() async throws {
        try await GatewayHarness.with(
            weights: [1], routes: Self.purchaseRoutes, extra: Self.clientIdentity,
            configure: { $0.timeouts.upstreamResponse = .milliseconds(300) }
        ) { harness in
            let connection = try await harness.connect()
            let slow = try await connection.request(.POST, "/slow/2000", headers: [("X-Account-Id", "alice")])
            #expect(slow.status == 504)
            let next = try await connection.request(.POST, "/slow/1", headers: [("X-Account-Id", "alice")])
            #expect(next.status == 200)
        }
    }

    @Test func anIdentityTrustedOnlyFromProxiesIsIgnoredAndStrippedFromOthers() async throws {
        let identity = "identity:\n  header: X-Account-Id\n"
        try await GatewayHarness.with(weights: [1], routes: Self.purchaseRoutes, extra: identity + "trusted_proxies: [127.0.0.9/32]\n") { harness in
            // From an untrusted peer the header names no account: no flag, and the backend never sees it.
            let results = try await Self.burst(harness, account: "forged", path: "/slow/200", count: 3)
            #expect(results.map(\.status) == [200, 200, 200])
            let connection = try await harness.connect()
            let response = try await connection.request(.POST, "/slow/1", headers: [("X-Account-Id", "forged")])
            #expect(response.header("X-Seen-X-Account-Id") == "")
            // From the trusted proxy it is the account, and it reaches the backend.
            let proxy = try await harness.connect(from: "127.0.0.9")
            let trusted = try await proxy.request(.POST, "/slow/1", headers: [("X-Account-Id", "carol")])
            #expect(trusted.header("X-Seen-X-Account-Id") == "carol")
        }
    }

    @Test func twoIdentityHeadersAreRefused() async throws {
        try await GatewayHarness.with(weights: [1], routes: Self.purchaseRoutes, extra: Self.clientIdentity) { harness in
            let request = "POST /slow/1 HTTP/1.1\r\nHost: gw\r\nX-Account-Id: a\r\nx-account-id: b\r\nContent-Length: 0\r\n\r\n"
            let result = try await harness.raw([Array(request.utf8)])
            #expect(result.status == 400)
            #expect(result.text.contains("more than one X-Account-Id header"))
            #expect(harness.backends[0].requests == 0)
        }
    }

    @Test func shadowModeForwardsAndCounts() async throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let routes = "  - prefix: /slow/\n    upstream: tickets\n    in_flight: {mode: shadow}\n"
        try await GatewayHarness.with(weights: [1], routes: routes, extra: Self.clientIdentity, metrics: metrics) { harness in
            let results = try await Self.burst(harness, account: "bot", path: "/slow/2000", count: 4)
            #expect(results.map(\.status) == [200, 200, 200, 200])
            #expect(harness.backends[0].requests == 4)
            #expect(registry.emitToString().contains(#"spikegate_shadow_refusals_total{rule="in_flight"} 3"#))
        }
    }
}

import Foundation
import GateProxy
import GateRules
import GateTestSupport
import Logging
import NIOCore
import NIOHTTP1
import Prometheus
import Testing

/// The admin listener: its pages, and metrics that count exactly what a scripted scenario did.
@Suite struct AdminTests {
    /// The value of the sample `line` (name with labels) in Prometheus text, if present.
    static func sample(_ text: String, _ line: String) -> Double? {
        for row in text.split(separator: "\n") where row.hasPrefix(line + " ") {
            return Double(row.dropFirst(line.count + 1))
        }
        return nil
    }

    @Test func metricsCountWhatTheScenarioDid() async throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(factory: PrometheusMetricsFactory(registry: registry))
        try await GatewayHarness.with(
            weights: [1, 3],
            routes: "  - prefix: /api/\n    upstream: tickets\n",
            metrics: metrics,
            configure: { $0.limits.maximumConnectionsPerIP = 2 }
        ) { harness in
            let admin = try await AdminServer.start(
                endpoint: .init(host: "127.0.0.1", port: 0), gateway: harness.gateway, watcher: nil,
                metrics: { registry.emitToString() }, group: harness.group, logger: Logger(label: "test")
            )
            let client = try await harness.connect()
            for _ in 0..<8 {
                #expect(try await client.request(.GET, "/api/x").status == 200)
            }
            for _ in 0..<2 {
                #expect(try await client.request(.GET, "/elsewhere").status == 404)
            }
            let smuggled = try await harness.raw([Array("POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".utf8)])
            #expect(smuggled.status == 400)
            // Two connections from 127.0.0.1 are open (client + this one); a third is refused.
            let second = try await harness.connect()
            let third = try await harness.raw([Array("GET /api/x HTTP/1.1\r\nHost: gw\r\n\r\n".utf8)])
            #expect(third.bytes.isEmpty)

            let page = try await HTTPTestConnection.connect(port: admin.port, group: harness.group)
            let scraped = try await page.request(.GET, "/metrics")
            #expect(scraped.status == 200)
            let text = scraped.body
            #expect(Self.sample(text, #"spikegate_requests_total{route="* /api/*",decision="forwarded"}"#) == 8, "\(text)")
            #expect(Self.sample(text, #"spikegate_requests_total{route="-",decision="no_route"}"#) == 2)
            #expect(Self.sample(text, #"spikegate_requests_total{route="-",decision="refused"}"#) == 1)
            #expect(Self.sample(text, #"spikegate_requests_total{route="* /api/*",decision="upstream_failed"}"#) == 0)
            #expect(Self.sample(text, "spikegate_connections_refused_total") == 1)
            #expect(Self.sample(text, "spikegate_connections_open") == 2)
            let b1 = "127.0.0.1:\(harness.backends[0].port)"
            let b2 = "127.0.0.1:\(harness.backends[1].port)"
            #expect(Self.sample(text, #"spikegate_backend_effective_weight{upstream="tickets",backend="\#(b1)"}"#) == 1)
            #expect(Self.sample(text, #"spikegate_backend_effective_weight{upstream="tickets",backend="\#(b2)"}"#) == 3)
            #expect(harness.backends[0].requests + harness.backends[1].requests == 8)
            // Every forwarded answer timed, per backend; the gauges of the overload controls.
            let timed = [b1, b2].compactMap { Self.sample(text, #"spikegate_upstream_response_seconds_count{upstream="tickets",backend="\#($0)"}"#) }
            #expect(timed.reduce(0, +) == 8, "\(text)")
            #expect(Self.sample(text, #"spikegate_warmup_phase{phase="ready"}"#) == 1)
            #expect(Self.sample(text, #"spikegate_warmup_phase{phase="warming"}"#) == 0)
            #expect(Self.sample(text, #"spikegate_rules_active{version="\#(harness.gateway.ruleSet.version)"}"#) == 1)
            #expect(Self.sample(text, #"spikegate_bans_active{kind="ip"}"#) == 0)
            #expect(Self.sample(text, #"spikegate_requests_total{route="* /api/*",decision="shed"}"#) == 0)
            let gauges = try await eventually {
                let text = try await page.request(.GET, "/metrics").body
                return Self.sample(text, #"spikegate_admission_limit{upstream="tickets"}"#) == 100
                    && Self.sample(text, #"spikegate_admission_in_flight{upstream="tickets"}"#) == 0
            }
            #expect(gauges, "the admission gauges did not show limit 100, 0 under way")

            let rules = try await page.request(.GET, "/rules")
            #expect(rules.status == 200)
            #expect(rules.body.contains(b1) && rules.body.contains(b2))
            #expect(try await page.request(.GET, "/healthz").status == 200)
            #expect(try await page.request(.GET, "/readyz").status == 200)
            #expect(try await page.request(.POST, "/rules/reload").status == 409)
            #expect(try await page.request(.GET, "/nope").status == 404)
            await second.close()
            await page.close()
            await admin.shutdown()
        }
    }

    @Test func readyzSaysWhyNotWhenAnUpstreamHasNoHealthyBackend() async throws {
        try await GatewayHarness.with(weights: [1], upstreamExtra: "    passive:\n      eject_after: 1\n      ejection: 30s\n    slow_start: 0s\n") { harness in
            let admin = try await AdminServer.start(
                endpoint: .init(host: "127.0.0.1", port: 0), gateway: harness.gateway, watcher: nil,
                metrics: { "" }, group: harness.group, logger: Logger(label: "test")
            )
            await harness.backends[0].stop()
            let client = try await harness.connect()
            _ = try await client.request(.GET, "/x")
            let page = try await HTTPTestConnection.connect(port: admin.port, group: harness.group)
            let ready = try await page.request(.GET, "/readyz")
            #expect(ready.status == 503)
            #expect(ready.body.contains("no healthy backend in upstream tickets"))
            await page.close()
            await admin.shutdown()
        }
    }

    @Test func redisCommandsAreTimedAndTheirFailuresCountedByCode() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let routes = "  - path: /buy/ticket\n    upstream: tickets\n    purchase: true\n"
        let identity = "identity:\n  header: X-Account-Id\n  trust: clients\n"
        try await GatewayHarness.with(weights: [1], routes: routes, extra: identity, metrics: metrics, configure: { $0.redis = redis.url }) { harness in
            let client = try await harness.connect()
            for index in 0..<5 {
                #expect(try await client.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "u\(index)")]).status == 200)
            }
            let timed = Self.sample(registry.emitToString(), "spikegate_redis_command_seconds_count") ?? 0
            // A flag taken and given back per purchase (batched per tick: at least one each way).
            #expect(timed >= 2, "\(registry.emitToString())")
            // Redis goes away: the purchases still pass (on_store_error: local), the failures count.
            redis.kill()
            for index in 5..<8 {
                #expect(try await client.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "u\(index)")]).status == 200)
            }
            let text = registry.emitToString()
            let failures = text.split(separator: "\n").filter { $0.hasPrefix("spikegate_redis_errors_total{") }
                .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
            #expect(failures >= 3, "\(text)")
        }
    }
}

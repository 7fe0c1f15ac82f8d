import Foundation
import GateCore
import GateProxy
import GateRules
import GateTestSupport
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
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

    @Test func overloadDecisionsAreCountedByRouteAndReason() async throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let backendGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let gated = try await TestBackend.start(name: "gated", group: backendGroup)
        gated.healthy = false
        let upstream = "    slow_start: 0s\n  gated:\n    backends:\n      - address: 127.0.0.1:\(gated.port)\n"
            + "    health_check: {interval: 100ms, timeout: 100ms, rise: 1, fall: 1}\n    slow_start: 0s\n"
        let routes = "  - path: /sale\n    upstream: tickets\n    sold_out: {json_code: -1, recheck: 1m}\n  - prefix: /work/\n    upstream: gated\n"
        try await GatewayHarness.with(weights: [1], upstreamExtra: upstream, routes: routes, metrics: metrics, awaitWarm: false, configure: {
            // Both backends must have passed a check; then one request under way per upstream
            // and no queue.
            $0.warmup = WarmupGate.Configuration(minimumHealthyBackends: 2, initialShare: 1, ramp: .zero)
            $0.admission.maximumInFlight = 1
            $0.admission.queue = 0
            $0.admission.adaptive = nil
        }) { harness in
            let client = try await harness.connect()
            // Warming (the gated backend fails its checks): 3 refused.
            for _ in 0..<3 {
                let answer = try await client.request(.GET, "/work/1")
                #expect(answer.status == 503)
                #expect(answer.body.contains(#""warmup""#), "\(answer.body)")
            }
            gated.healthy = true
            let warm = try await eventually(attempts: 200, every: .milliseconds(25)) { harness.gateway.warmupStatus().phase == .ready }
            #expect(warm, "the gateway did not warm up: \(harness.gateway.warmupStatus())")

            // One request holds the gated upstream's only place for 2 s: 2 more are shed.
            let holder = try await harness.connect()
            let held = Task { try await holder.request(.GET, "/work/2000").status }
            let holding = try await eventually { await harness.gateway.admission(upstream: "gated").inFlight == 1 }
            #expect(holding)
            for _ in 0..<2 {
                let answer = try await client.request(.GET, "/work/1")
                #expect(answer.status == 503)
                #expect(answer.body.contains(#""shed":"queue_full""#), "\(answer.body)")
            }
            #expect(try await held.value == 200)
            await holder.close()

            // One ticket sold, the backend's sold-out answer latches the route, 3 answered by
            // the gateway.
            harness.backends[0].stock = 1
            for _ in 0..<2 {
                #expect(try await client.request(.GET, "/sale").status == 200)
            }
            for _ in 0..<3 {
                #expect(try await client.request(.GET, "/sale").body == #"{"code":-1,"msg":"sold out"}"#)
            }
            #expect(harness.backends[0].requests == 2)

            let text = registry.emitToString()
            #expect(Self.sample(text, #"spikegate_requests_total{route="* /work/*",decision="warmup_refused"}"#) == 3, "\(text)")
            #expect(Self.sample(text, #"spikegate_requests_total{route="* /work/*",decision="shed"}"#) == 2)
            #expect(Self.sample(text, #"spikegate_shed_total{reason="queue_full"}"#) == 2)
            #expect(Self.sample(text, #"spikegate_requests_total{route="* /work/*",decision="forwarded"}"#) == 1)
            #expect(Self.sample(text, #"spikegate_requests_total{route="* /sale",decision="forwarded"}"#) == 2)
            #expect(Self.sample(text, #"spikegate_requests_total{route="* /sale",decision="sold_out"}"#) == 3)
            let latched = try await eventually {
                Self.sample(registry.emitToString(), "spikegate_sold_out_latched_routes") == 1
            }
            #expect(latched, "\(registry.emitToString())")
            #expect(Self.sample(text, #"spikegate_warmup_phase{phase="ready"}"#) == 1)
        }
        await gated.stop()
        try await backendGroup.shutdownGracefully()
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

    /// Runs `body` against a gateway with a Redis and a purchase route (`extraRoute` added to
    /// it), the accounts named by `X-Account-Id`, its metrics in the registry given.
    static func withPurchases(
        extraRoute: String = "",
        _ body: (GatewayHarness, RedisServerProcess, PrometheusCollectorRegistry, HTTPTestConnection) async throws -> Void
    ) async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let routes = "  - path: /buy/ticket\n    upstream: tickets\n    purchase: true\n" + extraRoute
        let identity = "identity:\n  header: X-Account-Id\n  trust: clients\n"
        try await GatewayHarness.with(weights: [1], routes: routes, extra: identity, metrics: metrics, configure: { $0.redis = redis.url }) { harness in
            try await body(harness, redis, registry, try await harness.connect())
        }
    }

    @Test func redisCommandsAreTimedAndTheirFailuresCountedByCode() async throws {
        try await Self.withPurchases { _, redis, registry, client async throws in
            for index in 0..<5 {
                #expect(try await client.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "u\(index)")]).status == 200)
            }
            let timed = Self.sample(registry.emitToString(), #"spikegate_redis_command_seconds_count{connection="shared"}"#) ?? 0
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

    @Test func commandsOnLeasedConnectionsAreTimedToo() async throws {
        // `store: watch` takes each flag in an optimistic transaction on a leased connection.
        try await Self.withPurchases(extraRoute: "    in_flight: {store: watch, ttl: 3s}\n") { _, _, registry, client async throws in
            for index in 0..<3 {
                #expect(try await client.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "w\(index)")]).status == 200)
            }
            // Per purchase, on the lease: WATCH and MGET in one pipeline, then MULTI/SET/EXEC in
            // another (the flag is given back on the shared connection).
            let timed = Self.sample(registry.emitToString(), #"spikegate_redis_command_seconds_count{connection="leased"}"#)
            #expect(timed == 6, "\(registry.emitToString())")
            #expect(Self.sample(registry.emitToString(), #"spikegate_requests_total{route="* /buy/ticket",decision="forwarded"}"#) == 3)
        }
    }
}

import GateCore
import GateProxy
import GateRules
import GateTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// A backend that dies is taken out (passive ejection and failing health checks) and its
/// traffic goes to the others; when it comes back it is slow-started.
@Suite struct UpstreamHealthTests {
    static let upstream = """
            health_check:
              path: /health
              interval: 500ms
              timeout: 500ms
              rise: 2
              fall: 3
            passive:
              eject_after: 2
              ejection: 30s
            slow_start: 3s

        """

    @Test func aKilledBackendIsEjectedAndARestartedOneSlowStarted() async throws {
        try await GatewayHarness.with(weights: [1, 2, 3, 4], upstreamExtra: Self.upstream) { harness in
            let connection = try await harness.connect()
            let dead = harness.backends[3]
            await dead.stop()
            // Let the gateway's loop read the EOFs of its idle connections to the dead backend:
            // a POST written on one it has not yet seen close went out, so it is answered 502,
            // never retried (nginx and HAProxy do not retry such a request either). That race
            // belongs to the moment of death, not to what this test checks.
            try await Task.sleep(for: .milliseconds(200))
            // Every request is answered: the dead backend's connect failures are retried
            // elsewhere until it is ejected.
            for _ in 0..<600 {
                let response = try await connection.request(.POST, "/buy/ticket", body: "{}")
                #expect(response.status == 200)
                #expect(response.body != "b4")
            }
            let counts = harness.backends.map(\.requests)
            #expect(counts[3] == 0)
            #expect(counts[0] + counts[1] + counts[2] == 600)
            // Re-spread by the remaining weights 1:2:3 (within the few retried picks).
            #expect(abs(counts[0] - 100) <= 5 && abs(counts[1] - 200) <= 5 && abs(counts[2] - 300) <= 5)
            let status = harness.gateway.backendStatus().first { $0.endpoint.port == dead.port }
            #expect(status?.effectiveWeight == 0)

            // Failing health checks take it down (fall 3); only then is it brought back by them.
            let down = try await eventually(attempts: 500) { harness.gateway.backendStatus().first { $0.endpoint.port == dead.port }?.phase == "down" }
            #expect(down)
            try await dead.restart()
            // Health checks bring it back (rise 2 × 500 ms); it starts with a small weight.
            let back = try await eventually(attempts: 500) { (harness.gateway.backendStatus().first { $0.endpoint.port == dead.port }?.effectiveWeight ?? 0) > 0 }
            #expect(back)
            let ramping = try #require(harness.gateway.backendStatus().first { $0.endpoint.port == dead.port })
            #expect(ramping.rampUntil != nil)
            #expect(ramping.effectiveWeight < ramping.weight * 100)
            for backend in harness.backends {
                backend.resetCounts()
            }
            for _ in 0..<600 {
                _ = try await connection.request(.GET, "/x")
            }
            // Its full share would be 240 of 600; early in its ramp it gets some, far fewer.
            #expect(dead.requests < 240)
            #expect(dead.requests > 0)
            // At the end of the ramp it has its whole weight again.
            let full = try await eventually(attempts: 300) {
                harness.gateway.backendStatus().first { $0.endpoint.port == dead.port }?.effectiveWeight == 400
            }
            #expect(full)
        }
    }

    @Test func fiveHundredsEjectABackend() async throws {
        try await GatewayHarness.with(
            weights: [1, 1], upstreamExtra: "    passive:\n      eject_after: 3\n      ejection: 30s\n    slow_start: 0s\n"
        ) { harness in
            let connection = try await harness.connect()
            for _ in 0..<40 {
                #expect(try await connection.request(.GET, "/status/503").status == 503)
            }
            // Both answer 503 for that path: the first to fail 3 in a row is ejected; the other
            // would leave the upstream empty, so it stays (at most half are ejected).
            let weights = harness.gateway.backendStatus().map(\.effectiveWeight)
            #expect(weights.sorted() == [0, 100], "\(weights)")
            let serving = try #require(weights.firstIndex(of: 100))
            for _ in 0..<10 {
                #expect(try await connection.request(.GET, "/x").body == "b\(serving + 1)")
            }
            #expect(harness.backends.map(\.requests).reduce(0, +) == 50)
        }
    }

    @Test func whenEveryBackendFailsAtMostHalfAreEjected() async throws {
        // Four backends answering 503 alike (their shared Redis is away, say): ejecting them all
        // would leave nothing to sell with once it is back. Two are ejected, two stay.
        try await GatewayHarness.with(
            weights: [1, 1, 1, 1], upstreamExtra: "    passive:\n      eject_after: 3\n      ejection: 30s\n    slow_start: 0s\n"
        ) { harness in
            let connection = try await harness.connect()
            var failing = 0
            for _ in 0..<80 {
                if try await connection.request(.GET, "/status/503").status == 503 {
                    failing += 1
                }
            }
            #expect(failing == 80)
            let weights = harness.gateway.backendStatus().map(\.effectiveWeight)
            #expect(weights.filter { $0 == 0 }.count == 2, "\(weights)")
            #expect(weights.filter { $0 == 100 }.count == 2, "\(weights)")
            // The cause is gone: the two left in the rotation answer at once.
            let answered = try await connection.request(.GET, "/x")
            #expect(answered.status == 200, "\(answered.body)")
            #expect(harness.backends.map(\.requests).reduce(0, +) == 81, "every request reached a backend")
        }
    }
}

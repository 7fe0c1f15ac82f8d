import Foundation
import GateCore
import GateProxy
import GateRedis
import GateRules
import GateTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

/// Overload shedding through the real gateway: a backend that serves 10 requests at a time in
/// 50 ms each (200 requests/s) offered about ten times that.
///
/// A load test (`GateProxyTests.Load*`): `make test` runs these after the rest, alone, since
/// goodput is measured against a clock and shares the machine's two cores.
@Suite("overload shedding", .serialized, .timeLimit(.minutes(2)))
struct LoadShedTests {
    /// What the load saw.
    struct Outcome: CustomStringConvertible {
        var sent = 0
        var served = 0
        /// 503 code -5 by `shed` reason.
        var shed: [String: Int] = [:]
        /// Anything else (must stay empty).
        var other: [String] = []
        /// Refusals on arrival (`queue_full`, `deadline`) that took the whole deadline or longer
        /// to come.
        var lateRefusals = 0
        var elapsed = Duration.zero

        var description: String {
            "sent \(self.sent) in \(self.elapsed), served \(self.served), shed \(self.shed), other \(self.other.prefix(5)), late refusals \(self.lateRefusals)"
        }
    }

    final class Tally: Sendable {
        let value = Mutex(Outcome())
    }

    /// A second upstream `name` over `backend` (after the harness's own `tickets`), with
    /// `extra` lines for its backend entry.
    static func upstream(_ name: String, backend: TestBackend, extra: String = "") -> String {
        "    slow_start: 0s\n  \(name):\n    backends:\n      - address: 127.0.0.1:\(backend.port)\n" + extra + "    slow_start: 0s\n"
    }

    /// `workers` keep-alive connections, each sending `GET path` every `period` (at once when
    /// the previous answer came later), for `duration`.
    static func load(port: Int, path: String, workers: Int, period: Duration, duration: Duration, deadline: Duration, group: any EventLoopGroup) async throws -> Outcome {
        let outcome = Tally()
        let start = ContinuousClock.now
        let end = start + duration
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for worker in 0..<workers {
                tasks.addTask {
                    // Each worker a client of its own address.
                    let connection = try await HTTPTestConnection.connect(port: port, from: "127.10.\(worker / 200).\(worker % 200 + 1)", group: group)
                    defer { Task { await connection.close() } }
                    var next = start + period * (Double(worker) / Double(workers))
                    while next < end {
                        try await Task.sleep(until: next)
                        let sent = ContinuousClock.now
                        let response = try await connection.request(.GET, path)
                        let took = ContinuousClock.now - sent
                        outcome.value.withLock { outcome in
                            outcome.sent += 1
                            if response.status == 200 {
                                outcome.served += 1
                            } else if response.status == 503, response.body.contains(#""code":-5"#),
                                      let reason = response.body.split(separator: "\"shed\":\"").last?.split(separator: "\"").first {
                                outcome.shed[String(reason), default: 0] += 1
                                if reason != "queue_timeout", took >= deadline {
                                    outcome.lateRefusals += 1
                                }
                                #expect(response.header("Retry-After") == "1")
                            } else {
                                outcome.other.append("\(response.status) \(response.body)")
                            }
                        }
                        next = max(next + period, ContinuousClock.now)
                    }
                }
            }
            try await tasks.waitForAll()
        }
        return outcome.value.withLock { outcome in
            outcome.elapsed = ContinuousClock.now - start
            return outcome
        }
    }

    typealias Admission = (inFlight: Int, queued: Int, limit: Int, longestWait: Duration)

    /// A backend serving 10 requests at a time in 50 ms (200/s) as upstream `name` (its entry
    /// gets `backendExtra`), behind a gateway on two threads configured by `configure`, offered
    /// ~2,000 requests/s for 10 s. Checks what every overload scenario promises — goodput ≥ 90%
    /// of capacity, only 200s and 503 code -5, ten times the capacity offered, no refusal on
    /// arrival that took the deadline, no admitted request that waited past it — then `checks`.
    static func overload(
        upstream name: String,
        backendExtra: String = "",
        configure: (inout GatewayConfiguration) -> Void,
        checks: (Outcome, Admission, TestBackend) -> Void
    ) async throws {
        // The load on two threads, the backend on one of its own (its 50 ms of work is a timer).
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let backendGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend = try await TestBackend.start(name: "slow", slots: 10, group: backendGroup)
        try await GatewayHarness.with(
            weights: [1],
            upstreamExtra: Self.upstream(name, backend: backend, extra: backendExtra),
            routes: "  - prefix: /\n    upstream: \(name)\n",
            threads: 2,
            configure: configure
        ) { harness in
            let outcome = try await Self.load(
                port: harness.port, path: "/work/50", workers: 300, period: .milliseconds(100), duration: .seconds(10),
                deadline: .milliseconds(500), group: group
            )
            let admission = await harness.gateway.admission(upstream: name)
            print("overload \(name): \(outcome) admission \(admission) backend peak \(backend.peakConcurrentRequests)")
            let seconds = outcome.elapsed / .seconds(1)
            #expect(Double(outcome.served) >= 0.9 * 200 * seconds, "\(outcome)")
            #expect(outcome.other.isEmpty, "\(outcome)")
            #expect(outcome.sent >= 5 * 2000, "the load was not ten times the capacity: \(outcome)")
            #expect(outcome.sent - outcome.served == outcome.shed.values.reduce(0, +))
            // Refused at once when the wait would pass the deadline, and no admitted request
            // waited past it.
            #expect(outcome.lateRefusals == 0, "\(outcome)")
            #expect(admission.longestWait <= .milliseconds(500), "\(admission)")
            checks(outcome, admission, backend)
        }
        await backend.stop()
        try await group.shutdownGracefully()
        try await backendGroup.shutdownGracefully()
    }

    @Test("a backend capped at 10 requests (50 ms each) offered ~2,000 requests/s for 10 s: never more than 10 at once, goodput ≥ 90% of 200/s, the rest refused before their deadline")
    func cappedBackend() async throws {
        try await Self.overload(upstream: "capped", backendExtra: "        max_in_flight: 10\n", configure: { $0.admission.adaptive = nil }) { outcome, _, backend in
            #expect(backend.peakConcurrentRequests <= 10, "\(outcome)")
            #expect(backend.requests == outcome.served)
            // The wait estimate misses rarely (those are refused at the deadline).
            let refused = outcome.shed.values.reduce(0, +)
            #expect(outcome.shed["queue_timeout", default: 0] * 20 <= refused, "\(outcome)")
        }
    }

    @Test("the same with only the adaptive limit: it settles near what the backend can take, goodput ≥ 90%, the rest refused before their deadline")
    func adaptiveLimitOnly() async throws {
        // No cap in the rules: the backend queues what its 10 slots cannot take, and its
        // latency is all the gateway learns from.
        try await Self.overload(upstream: "adaptive", configure: {
            $0.admission.maximumInFlight = 400
            $0.admission.adaptive = AdaptiveConcurrencyLimit.Configuration(initial: 40, minimum: 10, maximum: 400)
        }) { _, admission, backend in
            // The limit fell from where the load pushed it towards the backend's 10 slots: well
            // under its maximum, so the backend's own queue stayed short.
            #expect(admission.limit <= 40, "\(admission)")
            #expect(backend.peakConcurrentRequests < 400, "\(backend.peakConcurrentRequests)")
        }
    }
}

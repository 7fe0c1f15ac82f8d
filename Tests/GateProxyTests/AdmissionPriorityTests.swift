import Foundation
import GateCore
import GateProxy
import GateRules
import GateTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// The admission queue through the real gateway: with the backend at its `max_in_flight`, a
/// payment (`priority: high`) that arrives after waiting purchases goes before them.
@Suite("admission priority", .timeLimit(.minutes(1)))
struct AdmissionPriorityTests {
    @Test("a payment waiting behind purchases is admitted first")
    func paymentsFirst() async throws {
        let backendGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend = try await TestBackend.start(name: "one", group: backendGroup)
        let upstream = "    slow_start: 0s\n  one:\n    backends:\n      - address: 127.0.0.1:\(backend.port)\n        max_in_flight: 1\n    slow_start: 0s\n"
        let routes = "  - prefix: /work/\n    method: PUT\n    upstream: one\n    priority: high\n  - prefix: /\n    upstream: one\n"
        try await GatewayHarness.with(weights: [1], upstreamExtra: upstream, routes: routes, configure: {
            $0.admission.adaptive = nil
            $0.admission.queueTimeout = .seconds(10)
        }) { harness in
            // One purchase holds the backend's only slot for 3 s (the queue's deadline is long);
            // two more wait, then a payment.
            let sends: [(HTTPMethod, String)] = [(.GET, "/work/3000?first"), (.GET, "/work/20?second"), (.GET, "/work/20?third"), (.PUT, "/work/20?payment")]
            var answers: [Task<Int, any Error>] = []
            for (index, (method, path)) in sends.enumerated() {
                let connection = try await harness.connect()
                answers.append(Task {
                    defer { Task { await connection.close() } }
                    return try await connection.request(method, path).status
                })
                // In this order: the first under way, then each of the others waiting.
                let arrived = try await eventually {
                    let admission = await harness.gateway.admission(upstream: "one")
                    return admission.inFlight == 1 && admission.queued == index
                }
                #expect(arrived, "request \(index) did not arrive in turn")
            }
            var statuses: [Int] = []
            for answer in answers {
                statuses.append(try await answer.value)
            }
            #expect(statuses == [200, 200, 200, 200])
            #expect(backend.paths == ["/work/3000?first", "/work/20?payment", "/work/20?second", "/work/20?third"])
            #expect(backend.peakConcurrentRequests == 1)
        }
        await backend.stop()
        try await backendGroup.shutdownGracefully()
    }
}

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

/// The warm-up gate through the real gateway, started under full load with Redis down and its
/// backend failing its health checks. A load test: run after the rest, alone (see LoadShedTests).
@Suite("warm-up gate", .serialized, .timeLimit(.minutes(1)))
struct LoadWarmupTests {
    /// One request of the load: when it was sent, the share the gate admitted then, whether
    /// the gate was ramping, and the answer.
    struct Sample {
        let at: ContinuousClock.Instant
        let share: Double
        let phase: WarmupGate.Phase
        let status: Int
        let body: String
    }

    final class Samples: Sendable {
        let value = Mutex<[Sample]>([])
        let stop = Atomic(false)
    }

    @Test("under full load from the start: nothing reaches the backend before it is healthy and Redis answers, then the admitted share follows the ramp within ±10%")
    func restartUnderFullLoad() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        redis.kill()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let backendGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend = try await TestBackend.start(name: "gated", group: backendGroup)
        backend.healthy = false
        let upstream = "    slow_start: 0s\n  gated:\n    backends:\n      - address: 127.0.0.1:\(backend.port)\n"
            + "    health_check: {interval: 100ms, timeout: 100ms, rise: 1, fall: 1}\n    slow_start: 0s\n"
        try await GatewayHarness.with(
            weights: [1],
            upstreamExtra: upstream,
            routes: "  - prefix: /\n    upstream: gated\n",
            threads: 2,
            awaitWarm: false,
            configure: {
                $0.redis = redis.url
                // Both backends (the harness's own and this one) must have passed a check.
                $0.warmup = WarmupGate.Configuration(minimumHealthyBackends: 2, initialShare: 0.1, ramp: .seconds(2))
            }
        ) { harness in
            let samples = Samples()
            let gateway = harness.gateway
            let load = Task {
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    for worker in 0..<40 {
                        tasks.addTask {
                            let connection = try await HTTPTestConnection.connect(port: harness.port, from: "127.20.0.\(worker + 1)", group: group)
                            defer { Task { await connection.close() } }
                            while !samples.stop.load(ordering: .relaxed) {
                                let status = gateway.warmupStatus()
                                let at = ContinuousClock.now
                                let response = try await connection.request(.GET, "/x")
                                samples.value.withLock {
                                    $0.append(Sample(at: at, share: status.share, phase: status.phase, status: response.status, body: response.body))
                                }
                            }
                        }
                    }
                    try await tasks.waitForAll()
                }
            }
            // Warming: Redis down, the backend failing its checks.
            try await Task.sleep(for: .milliseconds(500))
            #expect(gateway.warmupStatus().phase == .warming)
            #expect(gateway.warmupStatus().waitingFor == "waiting for redis, redis scripts, 2 healthy backend(s), 1 so far")
            #expect(!gateway.readiness().ready)
            try await redis.restart()
            let redisSeen = try await eventually { gateway.warmupStatus().waitingFor == "waiting for 2 healthy backend(s), 1 so far" }
            #expect(redisSeen, "\(gateway.warmupStatus())")
            try await Task.sleep(for: .milliseconds(300))
            #expect(backend.requests == 0, "a request reached the backend before it was healthy")
            // The backend passes its checks: the ramp starts.
            let healthyAt = ContinuousClock.now
            backend.healthy = true
            let ramping = try await eventually { gateway.warmupStatus().phase != .warming }
            #expect(ramping)
            let ready = try await eventually(attempts: 200, every: .milliseconds(25)) { gateway.warmupStatus().phase == .ready }
            #expect(ready)
            try await Task.sleep(for: .milliseconds(200))
            samples.stop.store(true, ordering: .relaxed)
            try await load.value

            let all = samples.value.withLock { $0 }
            let warming = all.filter { ($0.phase == .warming || $0.phase == .starting) && $0.at < healthyAt }
            #expect(warming.count > 100)
            #expect(warming.allSatisfy { $0.status == 503 && $0.body.contains(#""code":-5"#) && $0.body.contains("warming") })
            // While ramping: in five bands of the share, the admitted fraction is the share's.
            let ramp = all.filter { $0.phase == .ramping }
            #expect(ramp.count > 500, "too few requests during the ramp: \(ramp.count)")
            for band in 0..<5 {
                let low = 0.1 + 0.9 * Double(band) / 5
                let high = 0.1 + 0.9 * Double(band + 1) / 5
                let inBand = ramp.filter { $0.share >= low && $0.share < high }
                guard inBand.count >= 50 else {
                    Issue.record("only \(inBand.count) requests with a share in \(low)..<\(high)")
                    continue
                }
                let expected = inBand.map(\.share).reduce(0, +) / Double(inBand.count)
                let admitted = Double(inBand.filter { $0.status == 200 }.count) / Double(inBand.count)
                #expect(abs(admitted - expected) <= 0.10, "share \(low)..<\(high): admitted \(admitted), expected \(expected) over \(inBand.count)")
                print("warm-up ramp band \(band): expected \(expected), admitted \(admitted) of \(inBand.count)")
            }
            #expect(ramp.allSatisfy { $0.status == 200 || $0.body.contains("ramping up") })
            // Ready: everything goes through.
            let after = all.filter { $0.phase == .ready }
            #expect(!after.isEmpty && after.allSatisfy { $0.status == 200 })
            #expect(backend.requests == all.filter { $0.status == 200 }.count)
        }
        await backend.stop()
        try await group.shutdownGracefully()
        try await backendGroup.shutdownGracefully()
    }
}

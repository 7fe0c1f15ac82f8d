import Foundation
import GateTestSupport
import NIOCore
import NIOPosix
import Testing
@testable import TrafficReplay

/// A replay is bounded: users due after the time limit never start; a capture that would take
/// more than a day is refused before anything is sent.
@Suite("Replay bounds", .timeLimit(.minutes(1)))
struct ReplayBoundsTests {
    @Test("users due after the time limit are cut short, not waited for")
    func lateUsersAreCutShort() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend = try await TestBackend.start(name: "any", group: group)
        var scenario = Scenario(name: "late")
        scenario.timeLimit = .seconds(1)
        var early = Population(name: "early", users: 3)
        early.addresses = AddressRange(first: IPv4(127, 61, 0, 1), count: 3)
        early.attempts = 1
        var late = Population(name: "late", users: 5)
        late.addresses = AddressRange(first: IPv4(127, 62, 0, 1), count: 5)
        late.startAfter = .seconds(3_600)
        scenario.populations = [early, late]
        let replayer = try Replayer(scenario: scenario, target: try ReplayTarget(url: "http://127.0.0.1:\(backend.port)"), group: group)
        let report = await replayer.run()
        await backend.stop()
        try await group.shutdownGracefully()
        #expect(report.usersCutShort == 5)
        #expect(report.populations.map(\.usersStarted) == [3, 0])
        #expect(report.populations[0].requests == 3)
    }

    @Test("a capture spanning more than a day at its speed is refused with what to do")
    func aCaptureLongerThanADayIsRefused() async throws {
        let day: Int64 = 86_400_000_000
        let text = """
            {"ts":1,"client":"127.0.0.1","method":"GET","target":"/"}
            {"ts":\(day * 2),"client":"127.0.0.1","method":"GET","target":"/"}
            """
        let capture = try Capture.parse(text, file: "long.jsonl")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let target = try ReplayTarget(url: "http://127.0.0.1:9")
        let refused = #expect(throws: ReplayError.self) {
            _ = try CaptureReplayer(capture: capture, target: target, speed: 1, group: group)
        }
        #expect("\(refused.map { "\($0)" } ?? "")".contains("raise --speed"))
        // Three times faster it fits in a day.
        _ = try CaptureReplayer(capture: capture, target: target, speed: 3, group: group)
        try await group.shutdownGracefully()
    }
}

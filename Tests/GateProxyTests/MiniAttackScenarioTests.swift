import Foundation
import GateCore
import GateProxy
import GateRules
import GateTestSupport
import NIOHTTP1
import Testing

/// The populations of a flash-sale attack at once on one gateway, each from its own loopback
/// addresses: real users, a zombie-account farm behind one address, and one account driven from
/// 200 addresses that each send only a little. Each population's outcome is exact.
@Suite struct MiniAttackScenarioTests {
    static let windows = """
        identity: {header: X-Account-Id, trust: clients}
        windows:
          per-ip: {key: ip, length: 1m, limit_above: 30}
          zombies: {key: accounts_per_ip, length: 1m, ban_above: 10}
          hydra: {key: ips_per_account, length: 1m, ban_above: 20}

        """
    static let routes = "  - prefix: /buy/\n    upstream: tickets\n    windows: [per-ip, zombies, hydra]\n  - prefix: /\n    upstream: tickets\n"

    private static func send(_ harness: GatewayHarness, from address: String, account: String, times: Int) async throws -> [Int] {
        let connection = try await harness.connect(from: address)
        defer { Task { await connection.close() } }
        var statuses: [Int] = []
        for _ in 0..<times {
            statuses.append(try await connection.request(.POST, "/buy/ticket", headers: [("X-Account-Id", account)], body: "{}").status)
        }
        return statuses
    }

    @Test func realUsersPassZombiesAndAHydraAreBanned() async throws {
        // A fixed admission cap: the adaptive limit's probes (at its minimum) would queue and
        // shed part of this crowd on a busy test machine; the subject here is the anti-cheat.
        try await GatewayHarness.with(weights: [1], routes: Self.routes, extra: Self.windows, configure: { $0.admission.adaptive = nil }) { harness in
            async let realUsers: [Int] = withThrowingTaskGroup(of: [Int].self) { group in
                // 200 people, each from their own address with their own account, 2 tries each.
                for index in 0..<200 {
                    group.addTask { try await Self.send(harness, from: "127.1.\(index / 100).\(index % 100 + 1)", account: "user-\(index)", times: 2) }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            async let zombies: [Int] = {
                // One address, 50 accounts, one purchase each.
                var statuses: [Int] = []
                for index in 0..<50 {
                    statuses += try await Self.send(harness, from: "127.2.0.1", account: "zombie-\(index)", times: 1)
                }
                return statuses
            }()
            async let hydra: [Int] = {
                // One account from 200 addresses, two requests each: far under any per-address limit.
                var statuses: [Int] = []
                for index in 0..<200 {
                    statuses += try await Self.send(harness, from: "127.3.\(index / 100).\(index % 100 + 1)", account: "hydra", times: 2)
                }
                return statuses
            }()
            let (users, farm, botnet) = try await (realUsers, zombies, hydra)

            #expect(users.count == 400)
            #expect(users.allSatisfy { $0 == 200 }, "real users refused: \(users.filter { $0 != 200 })")
            #expect(farm == Array(repeating: 200, count: 10) + Array(repeating: 403, count: 40))
            #expect(botnet == Array(repeating: 200, count: 40) + Array(repeating: 403, count: 360))
            #expect(harness.gateway.blocked(kind: .ip).map(\.key) == ["127.2.0.1"])
            #expect(harness.gateway.blocked(kind: .account).map(\.key) == ["hydra"])
            #expect(harness.backends[0].requests == 400 + 10 + 40)
        }
    }
}

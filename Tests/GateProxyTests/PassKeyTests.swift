import Foundation
import GateCore
import GateProxy
import GateRules
import GateTestSupport
import Logging
import NIOHTTP1
import Testing

/// Passes signed with the rules' `passes:` keys are honoured by every gateway with those rules
/// (behind an L4 balancer a client's next request may land on another gateway); without them,
/// only by the gateway that issued the pass.
@Suite struct PassKeyTests {
    static let secret = "pass-signing-secret-shared-by-the-gateways-0123"
    static let windows = "windows:\n  w: {length: 1m, challenge_above: 1, difficulty: 4, pass_budget: 5}\n"

    /// Gets a pass from the gateway on `port`: one request, a challenge, its solution.
    static func earnPass(_ client: HTTPTestConnection) async throws -> String {
        #expect(try await client.request(.POST, "/buy/x").status == 200)
        let challenged = try await client.request(.POST, "/buy/x")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(challenged.body.utf8)) as? [String: Any])
        let id = try #require((json["challenge"] as? [String: Any])?["id"] as? String)
        let nonce = try #require(ProofOfWork.solve(challenge: id, difficulty: 4))
        let solved = try await client.request(.GET, "/.spikegate/verify?id=\(id)&nonce=\(nonce)")
        return try #require((try JSONSerialization.jsonObject(with: Data(solved.body.utf8)) as? [String: Any])?["pass"] as? String)
    }

    @Test(arguments: [true, false])
    func aPassFromOneGatewayIsHonouredByAnotherWithTheSameKeys(sharedKeys: Bool) async throws {
        let extra = (sharedKeys ? "passes: {keys: [pass-a.key]}\n" : "") + Self.windows
        try await GatewayHarness.with(weights: [1], routes: WindowTests.routes, extra: extra, files: ["pass-a.key": Self.secret]) { harness in
            var configuration = GatewayConfiguration()
            configuration.listeners = [Listener(endpoint: Endpoint(host: "127.0.0.1", port: 0))]
            let rules = try RulesLoader.load(directory: harness.rulesDirectory.path)
            let second = try await Gateway.start(configuration: configuration, rules: rules, group: harness.group, logger: Logger(label: "second"))
            let pass = try await Self.earnPass(try await harness.connect())
            // On the other gateway the client is over the threshold too (one request, then the pass).
            let other = try await HTTPTestConnection.connect(port: second.ports[0], group: harness.group)
            #expect(try await other.request(.POST, "/buy/x").status == 200)
            let withPass = try await other.request(.POST, "/buy/x", headers: [("X-SpikeGate-Pass", pass)])
            #expect(withPass.status == (sharedKeys ? 200 : 429), "\(withPass.body)")
            await other.close()
            await second.shutdown(gracePeriod: .zero)
        }
    }
}

import Foundation
import GateCore
import GateProxy
import GateRules
import GateTestSupport
import Logging
import NIOCore
import NIOHTTP1
import Prometheus
import Testing

/// Sliding windows and bans, enforced by a real gateway, with the admin `/blocked` list.
@Suite struct WindowTests {
    static func rules(_ windows: String, identity: Bool = false) -> String {
        (identity ? "identity:\n  header: X-Account-Id\n  trust: clients\n" : "") + "windows:\n" + windows
    }

    static let routes = "  - prefix: /buy/\n    upstream: tickets\n    windows: [w]\n  - prefix: /\n    upstream: tickets\n"

    @Test func aClientOverTheLimitGets429AndOthersAreUnaffected() async throws {
        try await GatewayHarness.with(weights: [1], routes: Self.routes, extra: Self.rules("  w: {length: 10s, limit_above: 5}\n")) { harness in
            let client = try await harness.connect()
            var statuses: [Int] = []
            var last: HTTPTestConnection.Response?
            for _ in 0..<8 {
                let response = try await client.request(.POST, "/buy/x")
                statuses.append(response.status)
                last = response
            }
            #expect(statuses == [200, 200, 200, 200, 200, 429, 429, 429])
            #expect(last?.body == #"{"code":-10,"reason":"too many requests (rule w)"}"#)
            #expect(last?.header("Retry-After") == "10")
            // Another address has its own window; routes without the window are not counted.
            let other = try await harness.connect(from: "127.0.0.2")
            #expect(try await other.request(.POST, "/buy/x").status == 200)
            #expect(try await client.request(.GET, "/elsewhere").status == 200)
            #expect(harness.backends[0].requests == 7)
        }
    }

    @Test func aBannedClientIsRefusedEverywhereUntilAnOperatorUnblocksIt() async throws {
        let windows = Self.rules("  w: {length: 10s, ban_above: 3, ban_for: 10m}\n")
        try await GatewayHarness.with(weights: [1], routes: Self.routes, extra: windows) { harness in
            let admin = try await AdminServer.start(
                endpoint: .init(host: "127.0.0.1", port: 0), gateway: harness.gateway, watcher: nil,
                metrics: { "" }, group: harness.group, logger: Logger(label: "test")
            )
            let client = try await harness.connect(from: "127.0.0.3")
            var statuses: [Int] = []
            for _ in 0..<5 {
                statuses.append(try await client.request(.POST, "/buy/x").status)
            }
            #expect(statuses == [200, 200, 200, 403, 403])
            // The ban holds on every route.
            let elsewhere = try await client.request(.GET, "/elsewhere")
            #expect(elsewhere.status == 403)
            #expect(elsewhere.body.contains(#""code":-9"#))
            #expect(elsewhere.body.contains("banned by rule w"))
            #expect(Int(elsewhere.header("Retry-After") ?? "") ?? 0 > 500)

            let page = try await HTTPTestConnection.connect(port: admin.port, group: harness.group)
            let listed = try await page.request(.GET, "/blocked?kind=ip")
            #expect(listed.status == 200)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(listed.body.utf8)) as? [String: Any])
            #expect(json["count"] as? Int == 1)
            let entry = try #require((json["blocked"] as? [[String: Any]])?.first)
            #expect(entry["key"] as? String == "127.0.0.3")
            #expect(entry["rule"] as? String == "w")
            #expect(entry["hits"] as? Int == 3)
            let accounts = try await page.request(.GET, "/blocked?kind=account")
            let accountsJSON = try JSONSerialization.jsonObject(with: Data(accounts.body.utf8)) as? [String: Any]
            #expect(accountsJSON?["count"] as? Int == 0)
            #expect(try await page.request(.GET, "/blocked?kind=cat").status == 400)

            #expect(try await page.request(.DELETE, "/blocked/ip/127.0.0.3").status == 200)
            #expect(try await page.request(.DELETE, "/blocked/ip/127.0.0.3").status == 404)
            #expect(try await client.request(.GET, "/elsewhere").status == 200)
            await admin.shutdown()
        }
    }

    @Test func anAccountWindowBansTheAccountNotTheAddress() async throws {
        let windows = Self.rules("  w: {key: account, length: 10s, ban_above: 2}\n", identity: true)
        try await GatewayHarness.with(weights: [1], routes: Self.routes, extra: windows) { harness in
            let client = try await harness.connect()
            var statuses: [Int] = []
            for _ in 0..<3 {
                statuses.append(try await client.request(.POST, "/buy/x", headers: [("X-Account-Id", "scalper")]).status)
            }
            #expect(statuses == [200, 200, 403])
            // Same address, another account: fine. No account: not counted.
            #expect(try await client.request(.POST, "/buy/x", headers: [("X-Account-Id", "fan")]).status == 200)
            #expect(try await client.request(.POST, "/buy/x").status == 200)
            #expect(harness.gateway.blocked(kind: .account).map(\.key) == ["scalper"])
        }
    }

    @Test func aShadowWindowCountsButRefusesNothing() async throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let windows = Self.rules("  w: {length: 10s, limit_above: 2, mode: shadow}\n")
        try await GatewayHarness.with(weights: [1], routes: Self.routes, extra: windows, metrics: metrics) { harness in
            let client = try await harness.connect()
            for _ in 0..<5 {
                #expect(try await client.request(.POST, "/buy/x").status == 200)
            }
            #expect(registry.emitToString().contains(#"spikegate_shadow_refusals_total{rule="window"} 3"#))
            #expect(harness.gateway.blocked().isEmpty)
        }
    }

    @Test func challengedClientsAreListedBesideTheBannedOnes() async throws {
        let windows = Self.rules("  w: {length: 1m, challenge_above: 2, ban_above: 100}\n  hard: {length: 10s, ban_above: 1}\n")
        let routes = "  - prefix: /buy/\n    upstream: tickets\n    windows: [w]\n  - prefix: /hard/\n    upstream: tickets\n    windows: [hard]\n  - prefix: /\n    upstream: tickets\n"
        try await GatewayHarness.with(weights: [1], routes: routes, extra: windows) { harness in
            let admin = try await AdminServer.start(
                endpoint: .init(host: "127.0.0.1", port: 0), gateway: harness.gateway, watcher: nil,
                metrics: { "" }, group: harness.group, logger: Logger(label: "test")
            )
            let challenged = try await harness.connect(from: "127.0.0.21")
            let statuses = try await [1, 2, 3, 4, 5].asyncMap { _ in try await challenged.request(.POST, "/buy/x").status }
            #expect(statuses == [200, 200, 429, 429, 429])
            let banned = try await harness.connect(from: "127.0.0.22")
            #expect(try await banned.request(.POST, "/hard/x").status == 200)
            #expect(try await banned.request(.POST, "/hard/x").status == 403)

            let page = try await HTTPTestConnection.connect(port: admin.port, group: harness.group)
            let all = try #require(try JSONSerialization.jsonObject(with: Data(try await page.request(.GET, "/blocked").body.utf8)) as? [String: Any])
            #expect(all["count"] as? Int == 2)
            #expect(all["banned"] as? Int == 1)
            #expect(all["challenged"] as? Int == 1)
            let entries = try #require(all["blocked"] as? [[String: Any]])
            #expect(entries.map { $0["action"] as? String } == ["banned", "challenged"])
            let record = entries[1]
            #expect(record["key"] as? String == "127.0.0.21")
            #expect(record["rule"] as? String == "w")
            #expect(record["reason"] as? String == "over 2 requests in 1m: challenged")
            #expect(record["hits"] as? Int == 3)
            let seconds = try #require(record["seconds_left"] as? Double)
            #expect(seconds > 0 && seconds <= 60)
            // Filters: by action, by rule.
            let onlyChallenged = try JSONSerialization.jsonObject(with: Data(try await page.request(.GET, "/blocked?action=challenged").body.utf8)) as? [String: Any]
            #expect((onlyChallenged?["blocked"] as? [[String: Any]])?.map { $0["key"] as? String } == ["127.0.0.21"])
            let byRule = try JSONSerialization.jsonObject(with: Data(try await page.request(.GET, "/blocked?rule=hard").body.utf8)) as? [String: Any]
            #expect((byRule?["blocked"] as? [[String: Any]])?.map { $0["key"] as? String } == ["127.0.0.22"])
            #expect(try await page.request(.GET, "/blocked?action=scolded").status == 400)
            // DELETE forgets the challenge record too.
            #expect(try await page.request(.DELETE, "/blocked/ip/127.0.0.21").status == 200)
            #expect(harness.gateway.challenged().isEmpty)
            await admin.shutdown()
        }
    }

    @Test func zombieAccountsBehindOneAddressGetTheAddressBanned() async throws {
        let windows = Self.rules("  w: {key: accounts_per_ip, length: 1m, ban_above: 10}\n", identity: true)
        try await GatewayHarness.with(weights: [1], routes: Self.routes, extra: windows) { harness in
            let farm = try await harness.connect(from: "127.0.0.4")
            var statuses: [Int] = []
            for index in 0..<50 {
                statuses.append(try await farm.request(.POST, "/buy/x", headers: [("X-Account-Id", "zombie-\(index)")]).status)
            }
            #expect(statuses == Array(repeating: 200, count: 10) + Array(repeating: 403, count: 40))
            #expect(harness.gateway.blocked(kind: .ip).map(\.key) == ["127.0.0.4"])
            #expect(harness.gateway.blocked(kind: .ip).first?.reason == "over 10 accounts in 1m")
            // One account used again and again from another address is fine.
            let fan = try await harness.connect(from: "127.0.0.5")
            for _ in 0..<12 {
                #expect(try await fan.request(.POST, "/buy/x", headers: [("X-Account-Id", "fan")]).status == 200)
            }
        }
    }

    @Test func oneAccountFromManyAddressesGetsTheAccountBanned() async throws {
        let windows = Self.rules("  w: {key: ips_per_account, length: 1m, ban_above: 5}\n", identity: true)
        try await GatewayHarness.with(weights: [1], routes: Self.routes, extra: windows) { harness in
            var statuses: [Int] = []
            for index in 1...20 {
                let bot = try await harness.connect(from: "127.0.1.\(index)")
                statuses.append(try await bot.request(.POST, "/buy/x", headers: [("X-Account-Id", "hydra")]).status)
                await bot.close()
            }
            #expect(statuses == Array(repeating: 200, count: 5) + Array(repeating: 403, count: 15))
            #expect(harness.gateway.blocked(kind: .account).map(\.key) == ["hydra"])
            #expect(harness.gateway.blocked(kind: .ip).isEmpty)
        }
    }

    @Test func aChallengeSolvedEarnsAPassWithItsOwnBudget() async throws {
        let windows = Self.rules("  w: {length: 1m, challenge_above: 3, difficulty: 8, pass_budget: 2}\n")
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(factory: PrometheusMetricsFactory(registry: registry))
        func passesInUse(_ harness: GatewayHarness) -> Double? {
            harness.gateway.refreshScrapedMetrics()
            return AdminTests.sample(registry.emitToString(), "spikegate_passes_in_use")
        }
        try await GatewayHarness.with(weights: [1], routes: Self.routes, extra: windows, metrics: metrics) { harness in
            let client = try await harness.connect()
            for _ in 0..<3 {
                #expect(try await client.request(.POST, "/buy/x").status == 200)
            }
            let challenged = try await client.request(.POST, "/buy/x")
            #expect(challenged.status == 429)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(challenged.body.utf8)) as? [String: Any])
            #expect(json["code"] as? Int == -3)
            let challenge = try #require(json["challenge"] as? [String: Any])
            let id = try #require(challenge["id"] as? String)
            #expect(challenge["difficulty"] as? Int == 8)
            #expect(challenge["kind"] as? String == "pow")

            // A wrong answer is refused and uses the challenge up.
            let wrongChallenge = try await client.request(.POST, "/buy/x")
            let wrongID = try #require(((try JSONSerialization.jsonObject(with: Data(wrongChallenge.body.utf8)) as? [String: Any])?["challenge"] as? [String: Any])?["id"] as? String)
            let badNonce = (0..<1_000).map(String.init).first { !ProofOfWork.verify(challenge: wrongID, nonce: $0, difficulty: 8) }!
            let wrong = try await client.request(.GET, "/.spikegate/verify?id=\(wrongID)&nonce=\(badNonce)")
            #expect(wrong.status == 403)
            #expect(wrong.body.contains("wrong solution"))

            let nonce = try #require(ProofOfWork.solve(challenge: id, difficulty: 8))
            let solved = try await client.request(.GET, "/.spikegate/verify?id=\(id)&nonce=\(nonce)")
            #expect(solved.status == 200)
            let pass = try #require((try JSONSerialization.jsonObject(with: Data(solved.body.utf8)) as? [String: Any])?["pass"] as? String)
            #expect(solved.header("Set-Cookie")?.hasPrefix("sg_pass=\(pass); Path=/;") == true)
            #expect(passesInUse(harness) == 1)
            // The same solution again: single use.
            let replayed = try await client.request(.GET, "/.spikegate/verify?id=\(id)&nonce=\(nonce)")
            #expect(replayed.status == 403)
            #expect(replayed.body.contains("already used"))

            // The pass lets two requests through (its budget), as a header or as the cookie.
            #expect(try await client.request(.POST, "/buy/x", headers: [("X-SpikeGate-Pass", pass)]).status == 200)
            #expect(try await client.request(.POST, "/buy/x", headers: [("Cookie", "a=b; sg_pass=\(pass)")]).status == 200)
            #expect(try await client.request(.POST, "/buy/x", headers: [("X-SpikeGate-Pass", pass)]).status == 429)
            // Spent: no longer in use (still remembered, so it stays spent).
            #expect(passesInUse(harness) == 0)
            // A forged pass is no pass.
            let forged = pass.dropLast(4) + "0000"
            #expect(try await client.request(.POST, "/buy/x", headers: [("X-SpikeGate-Pass", String(forged))]).status == 429)
            #expect(harness.backends[0].requests == 5)
            // Every request above, by decision: 3 + 2 forwarded, 2 + 1 + 1 challenged (the
            // wrong answer's challenge included), one solved, two failed (wrong, replayed).
            let text = registry.emitToString()
            let route = #"route="* /buy/*""#
            #expect(AdminTests.sample(text, #"spikegate_requests_total{\#(route),decision="forwarded"}"#) == 5, "\(text)")
            #expect(AdminTests.sample(text, #"spikegate_requests_total{\#(route),decision="challenged"}"#) == 4)
            #expect(AdminTests.sample(text, #"spikegate_requests_total{route="-",decision="challenge_solved"}"#) == 1)
            #expect(AdminTests.sample(text, #"spikegate_requests_total{route="-",decision="challenge_failed"}"#) == 2)
        }
    }

    @Test func aBrowserGetsThePageThatSolvesTheChallenge() async throws {
        let windows = Self.rules("  w: {length: 1m, challenge_above: 1, difficulty: 6}\n")
        try await GatewayHarness.with(weights: [1], routes: Self.routes, extra: windows) { harness in
            let browser = try await harness.connect()
            let accept = [("Accept", "text/html,application/xhtml+xml")]
            #expect(try await browser.request(.GET, "/buy/x", headers: accept).status == 200)
            let page = try await browser.request(.GET, "/buy/x", headers: accept)
            #expect(page.status == 429)
            #expect(page.header("Content-Type") == "text/html; charset=utf-8")
            #expect(page.body.contains("fetch(\"/.spikegate/verify?id=\""))
            #expect(page.body.contains("bits = 6"))
            // The id the page works on is a live challenge (the page's own solver was checked
            // against hashlib under node; here Swift solves it).
            let marker = "const id = \""
            let start = try #require(page.body.range(of: marker)).upperBound
            let id = String(page.body[start...].prefix(while: { $0 != "\"" }))
            let nonce = try #require(ProofOfWork.solve(challenge: id, difficulty: 6))
            #expect(try await browser.request(.GET, "/.spikegate/verify?id=\(id)&nonce=\(nonce)").status == 200)
        }
    }

    @Test func theBlockedListWantsTheAdminTokenWhenOneIsSet() async throws {
        try await GatewayHarness.with(weights: [1], routes: Self.routes, extra: Self.rules("  w: {length: 10s, ban_above: 1}\n")) { harness in
            let token = "s3cret-admin-token-0123456789"
            let admin = try await AdminServer.start(
                endpoint: .init(host: "127.0.0.1", port: 0), gateway: harness.gateway, watcher: nil,
                metrics: { "" }, token: token, group: harness.group, logger: Logger(label: "test")
            )
            let client = try await harness.connect(from: "127.0.0.6")
            _ = try await client.request(.POST, "/buy/x")
            #expect(try await client.request(.POST, "/buy/x").status == 403)
            let page = try await HTTPTestConnection.connect(port: admin.port, group: harness.group)
            let anonymous = try await page.request(.GET, "/blocked")
            #expect(anonymous.status == 401)
            #expect(anonymous.header("WWW-Authenticate") == "Bearer")
            #expect(try await page.request(.DELETE, "/blocked/ip/127.0.0.6", headers: [("Authorization", "Bearer wrong")]).status == 401)
            #expect(try await page.request(.DELETE, "/blocked/ip/127.0.0.6", headers: [("Authorization", "Bearer \(token)x")]).status == 401)
            #expect(harness.gateway.blocked().count == 1)
            #expect(try await page.request(.GET, "/blocked", headers: [("Authorization", "Bearer \(token)")]).status == 200)
            #expect(try await page.request(.DELETE, "/blocked/ip/127.0.0.6", headers: [("Authorization", "Bearer \(token)")]).status == 200)
            #expect(harness.gateway.blocked().isEmpty)
            // Health and metrics stay open to monitoring.
            #expect(try await page.request(.GET, "/healthz").status == 200)
            await admin.shutdown()
        }
    }

    @Test func deniedNetworksAreRefusedAndAllowedOnesNeverLimited() async throws {
        let rules = Self.rules("  w: {length: 10s, limit_above: 1}\n") + "deny: [127.0.0.7/32]\nallow: [127.0.0.8/32]\n"
        try await GatewayHarness.with(weights: [1], routes: Self.routes, extra: rules) { harness in
            let denied = try await harness.connect(from: "127.0.0.7")
            let refusal = try await denied.request(.GET, "/elsewhere")
            #expect(refusal.status == 403)
            #expect(refusal.body == #"{"code":-11,"reason":"denied"}"#)
            let boxOffice = try await harness.connect(from: "127.0.0.8")
            for _ in 0..<5 {
                #expect(try await boxOffice.request(.POST, "/buy/x").status == 200)
            }
            let other = try await harness.connect(from: "127.0.0.9")
            #expect(try await other.request(.POST, "/buy/x").status == 200)
            #expect(try await other.request(.POST, "/buy/x").status == 429)
            #expect(harness.backends[0].requests == 6)
        }
    }
}

extension Array {
    /// `map` with an async transform, one element after the other.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self {
            results.append(try await transform(element))
        }
        return results
    }
}

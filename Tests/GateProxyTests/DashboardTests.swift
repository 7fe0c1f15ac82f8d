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

/// The admin dashboard, loaded from a live gateway into a real headless Chromium (Debian's
/// `chromium`, installed by `make deps`): its script fetches the admin endpoints and the ban
/// in force shows in the DOM.
@Suite("dashboard", .timeLimit(.minutes(1)))
struct DashboardTests {
    static func chromium() throws -> String {
        for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw TestSupportError("chromium not found; run `make deps` (installs Debian's chromium)")
    }

    /// The DOM of `url` after its scripts ran (Chromium's virtual time lets the fetches finish).
    static func renderedDOM(_ url: String) async throws -> String {
        let run = try await runProgram(
            try Self.chromium(), ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom", url]
        )
        return run.standardOutput
    }

    @Test("the page from a live gateway lists the ban in force, with its rule, and the readiness and rules version")
    func showsTheBan() async throws {
        let routes = "  - prefix: /buy/\n    upstream: tickets\n    windows: [w]\n  - prefix: /\n    upstream: tickets\n"
        let windows = "windows:\n  w: {length: 10s, ban_above: 2, ban_for: 5m}\n"
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(factory: PrometheusMetricsFactory(registry: registry))
        try await GatewayHarness.with(weights: [1], routes: routes, extra: windows, metrics: metrics) { harness in
            let admin = try await AdminServer.start(
                endpoint: .init(host: "127.0.0.1", port: 0), gateway: harness.gateway, watcher: nil,
                metrics: { registry.emitToString() }, group: harness.group, logger: Logger(label: "test")
            )
            let bot = try await harness.connect(from: "127.0.9.1")
            for _ in 0..<3 {
                _ = try await bot.request(.POST, "/buy/x")
            }
            #expect(harness.gateway.blocked(kind: .ip).map(\.key) == ["127.0.9.1"])
            let page = try await HTTPTestConnection.connect(port: admin.port, group: harness.group)
            let html = try await page.request(.GET, "/")
            #expect(html.status == 200 && html.header("Content-Type")?.hasPrefix("text/html") == true)

            let dom = try await Self.renderedDOM("http://127.0.0.1:\(admin.port)/")
            #expect(dom.contains(#"data-kind="ip" data-key="127.0.9.1""#), "\(dom)")
            #expect(dom.contains("<td>w</td>"), "the ban's rule")
            #expect(dom.contains(#"<b id="ready" class="ok">ready</b>"#), "\(dom)")
            #expect(dom.contains(#"<b id="rules-version">\#(harness.gateway.ruleSet.version)</b>"#))
            #expect(dom.contains(#"<b id="banned-count">1</b>"#))
            // The rates table, summed over routes from /metrics (the metrics of this gateway).
            #expect(dom.contains("<td>forwarded</td>") && dom.contains("<td>banned</td>"), "\(dom)")
            await page.close()
            await bot.close()
            await admin.shutdown()
        }
    }
}

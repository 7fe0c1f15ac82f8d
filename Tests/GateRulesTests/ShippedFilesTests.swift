import Foundation
import GateCore
import GateRules
import Testing

/// The rule files and configurations the repository ships must load as they are.
@Suite("Shipped files")
struct ShippedFilesTests {
    /// The package's root: three levels above this file.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test("Rules/ compiles: the demo's four weighted ticket nodes and the node's routes")
    func rules() throws {
        let rules = try RulesLoader.load(directory: "\(Self.root)/Rules")
        let tickets = try #require(rules.upstream(named: "tickets"))
        #expect(tickets.backends.map(\.endpoint.description) == ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083", "127.0.0.1:8084"])
        #expect(tickets.backends.map(\.weight) == [1, 2, 3, 4])
        #expect(tickets.healthCheck.path == "/health")
        #expect(tickets.health.slowStart == .seconds(10))
        #expect(rules.route(method: "POST", path: "/buy/ticket")?.upstream == "tickets")
        #expect(rules.route(method: "POST", path: "/orders/abc/pay")?.upstream == "tickets")
        #expect(rules.route(method: "GET", path: "/stock")?.upstream == "tickets")
        #expect(rules.route(method: "GET", path: "/health") == nil)
        #expect(rules.identity?.header == "X-Account-Id")
        #expect(rules.route(method: "POST", path: "/buy/ticket")?.inFlight == .purchaseDefault)
        #expect(rules.route(method: "GET", path: "/stock")?.inFlight == nil)
    }

    @Test("Deploy configurations load without a diagnostic", arguments: ["gateway.yaml", "gateway-tls.yaml"])
    func configurations(name: String) throws {
        let configuration = try GatewayConfiguration.load(path: "\(Self.root)/Deploy/\(name)")
        #expect(!configuration.listeners.isEmpty)
        #expect(configuration.admin == Endpoint(host: "127.0.0.1", port: 9090))
    }

    @Test("gateway.yaml points at the shipped rules and spells out the defaults")
    func plainConfiguration() throws {
        let configuration = try GatewayConfiguration.load(path: "\(Self.root)/Deploy/gateway.yaml")
        #expect(configuration.rulesDirectory == "\(Self.root)/Deploy/../Rules")
        #expect(configuration.listeners == GatewayConfiguration.defaultListeners)
        #expect(configuration.timeouts == Timeouts())
        #expect(configuration.limits == Limits())
        #expect(configuration.redis == nil)
        #expect(configuration.admission == Admission())
        // The defaults but a 30 s ramp after each start.
        var warmup = WarmupGate.Configuration()
        warmup.ramp = .seconds(30)
        #expect(configuration.warmup == warmup)
    }

    @Test("gateway-tls.yaml has a TLS listener with files and a PROXY-protocol listener")
    func tlsConfiguration() throws {
        let configuration = try GatewayConfiguration.load(path: "\(Self.root)/Deploy/gateway-tls.yaml")
        #expect(configuration.listeners.contains { if case .files = $0.tls { true } else { false } })
        #expect(configuration.listeners.contains { $0.proxyProtocol && $0.tls == nil })
        #expect(configuration.redis == "redis://127.0.0.1:6379")
    }
}

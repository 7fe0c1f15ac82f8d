import Foundation
import GateCore
import GateRules
import Testing

@Suite("Gateway configuration")
struct GatewayConfigurationTests {
    private static func parse(_ yaml: String, baseDirectory: String = "/etc/spikegate") throws(ConfigurationError) -> GatewayConfiguration {
        try GatewayConfiguration.parse(yaml, file: "gateway.yaml", baseDirectory: baseDirectory)
    }

    @Test("an empty file, or one of comments, gives every default")
    func defaults() throws {
        for yaml in ["", "# nothing here\n", "{}"] {
            let configuration = try Self.parse(yaml)
            #expect(configuration == GatewayConfiguration())
        }
        let configuration = GatewayConfiguration()
        #expect(configuration.listeners == [Listener(endpoint: Endpoint(host: "0.0.0.0", port: 8080), tls: nil, proxyProtocol: false)])
        #expect(configuration.admin == nil)
        #expect(configuration.redis == nil)
        #expect(configuration.rulesDirectory == nil)
        #expect(configuration.timeouts.header == .seconds(10))
        #expect(configuration.timeouts.idle == .seconds(60))
        #expect(configuration.timeouts.bodyMinimumRate == 1024)
        #expect(configuration.timeouts.bodyRateGrace == .seconds(5))
        #expect(configuration.timeouts.upstreamConnect == .seconds(2))
        #expect(configuration.timeouts.upstreamResponse == .seconds(30))
        #expect(configuration.timeouts.drain == .seconds(10))
        #expect(configuration.limits.requestHead.maximumURIBytes == 8192)
        #expect(configuration.limits.requestHead.maximumHeaderCount == 100)
        #expect(configuration.limits.requestHead.maximumHeaderBytes == 32768)
        #expect(configuration.limits.requestHead.maximumBodyBytes == 1_048_576)
        #expect(configuration.limits.maximumConnections == 10_000)
        #expect(configuration.limits.maximumConnectionsPerIP == 256)
        #expect(configuration.limits.outboundBufferBytes == 262_144)
        #expect(configuration.limits.upstreamIdlePerLoop == 256)
    }

    @Test("every key is read")
    func everyField() throws {
        let configuration = try Self.parse("""
            listeners:
              - address: 0.0.0.0:80
                proxy_protocol: true
              - address: "[::]:443"
                tls:
                  certificate: tls/cert.pem
                  key: /abs/key.pem
              - address: 127.0.0.1:8443
                tls: self_signed
              - address: 127.0.0.1:0
              - address: 127.0.0.1:0
            admin:
              address: 127.0.0.1:9091
              token_file: secrets/admin.token
            redis: unix:///run/redis.sock
            rules: rules.d
            timeouts:
              header: 2s
              idle: 1m30s
              body_min_rate: 512
              body_rate_grace: 0s
              upstream_connect: 250ms
              upstream_response: 5s
              drain: 1m
            limits:
              max_uri_bytes: 4KiB
              max_header_count: 50
              max_header_bytes: 16384
              max_body_bytes: 2MiB
              max_connections: 20
              max_connections_per_ip: 2
              outbound_buffer_bytes: 64KiB
              upstream_idle_per_loop: 0
            """)
        #expect(configuration.listeners == [
            Listener(endpoint: Endpoint(host: "0.0.0.0", port: 80), proxyProtocol: true),
            Listener(endpoint: Endpoint(host: "::", port: 443), tls: .files(certificate: "/etc/spikegate/tls/cert.pem", key: "/abs/key.pem")),
            Listener(endpoint: Endpoint(host: "127.0.0.1", port: 8443), tls: .selfSigned),
            Listener(endpoint: Endpoint(host: "127.0.0.1", port: 0)),
            Listener(endpoint: Endpoint(host: "127.0.0.1", port: 0)),
        ])
        #expect(configuration.admin == Endpoint(host: "127.0.0.1", port: 9091))
        #expect(configuration.adminTokenFile == "/etc/spikegate/secrets/admin.token")
        #expect(configuration.redis == "unix:///run/redis.sock")
        #expect(configuration.rulesDirectory == "/etc/spikegate/rules.d")
        #expect(configuration.timeouts == Timeouts(
            header: .seconds(2),
            idle: .seconds(90),
            bodyMinimumRate: 512,
            bodyRateGrace: .zero,
            upstreamConnect: .milliseconds(250),
            upstreamResponse: .seconds(5),
            drain: .seconds(60)
        ))
        #expect(configuration.limits == Limits(
            requestHead: RequestHeadCheck.Limits(
                maximumURIBytes: 4096,
                maximumHeaderCount: 50,
                maximumHeaderBytes: 16384,
                maximumBodyBytes: 2 * 1_048_576
            ),
            maximumConnections: 20,
            maximumConnectionsPerIP: 2,
            outboundBufferBytes: 65536,
            upstreamIdlePerLoop: 0
        ))
    }

    @Test("relative paths resolve against the file's directory; absolute ones stay", arguments: [
        ("rules: ../Rules", "Deploy", "Deploy/../Rules"),
        ("rules: ../Rules", "", "../Rules"),
        ("rules: /srv/rules", "Deploy", "/srv/rules"),
        ("rules: rules", "/", "/rules"),
    ])
    func relativePaths(yaml: String, base: String, expected: String) throws {
        #expect(try Self.parse(yaml, baseDirectory: base).rulesDirectory == expected)
    }

    @Test("load reads the file and resolves paths against its directory")
    func load() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("gateway.yaml").path
        try "rules: rules\nadmin:\n  address: 127.0.0.1:9090\n".write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = try GatewayConfiguration.load(path: path)
        #expect(configuration.rulesDirectory == directory.appendingPathComponent("rules").path)
        #expect(configuration.admin == Endpoint(host: "127.0.0.1", port: 9090))

        try "limits:\n  max_body_bytes: 0\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: ConfigurationError.self) { try GatewayConfiguration.load(path: path) }
        #expect(error?.diagnostics.first?.file == path)
        #expect(error?.description.hasPrefix("\(path):2:19: limits.max_body_bytes: 0 is out of range") == true, "\(error?.description ?? "")")
    }

    @Test("a missing file, or a directory, is an error naming the path")
    func missingFile() {
        let missing = #expect(throws: ConfigurationError.self) { try GatewayConfiguration.load(path: "/nonexistent/gateway.yaml") }
        #expect(missing?.diagnostics == [Diagnostic(file: "/nonexistent/gateway.yaml", line: 0, column: 0, path: "", message: "no such file", hint: "check the path")])
        #expect(missing?.description == "/nonexistent/gateway.yaml: no such file (hint: check the path)")
        let directory = #expect(throws: ConfigurationError.self) { try GatewayConfiguration.load(path: "/tmp") }
        #expect(directory?.diagnostics.first?.message.contains("is a directory") == true)
    }

    @Test("every problem in a file is reported at once, in file order")
    func everyProblem() {
        let error = #expect(throws: ConfigurationError.self) {
            try Self.parse("""
                listeners:
                  - address: nowhere
                    proxy_protocol: maybe
                timeouts:
                  idel: 5s
                  header: 10
                limits:
                  max_connections: -1
                """)
        }
        #expect(error?.diagnostics.map(\.line) == [2, 3, 5, 6, 8])
        #expect(error?.description.split(separator: "\n").count == 5)
    }

    @Test("admission and warm-up: defaults, and every key read")
    func admissionAndWarmup() throws {
        let defaults = try Self.parse("")
        #expect(defaults.admission == Admission())
        #expect(defaults.admission.adaptive?.initial == 100)
        #expect(defaults.warmup == WarmupGate.Configuration())
        let configured = try Self.parse("""
            admission:
              max_in_flight: 400
              queue: 50
              queue_timeout: 250ms
              adaptive: {initial: 40, min: 8, max: 300}
            warmup:
              min_healthy_backends: 2
              initial_share: 25%
              ramp: 10s
              wait_for_redis: false
              rewarm_on_redis_loss: true
              rewarm_on_backend_loss: false
            """)
        #expect(configured.admission.maximumInFlight == 400)
        #expect(configured.admission.queue == 50)
        #expect(configured.admission.queueTimeout == .milliseconds(250))
        #expect(configured.admission.adaptive == .init(initial: 40, minimum: 8, maximum: 300))
        #expect(configured.warmup.minimumHealthyBackends == 2)
        #expect(configured.warmup.initialShare == 0.25)
        #expect(configured.warmup.ramp == .seconds(10))
        #expect(!configured.warmup.waitForRedis && configured.warmup.rewarmOnRedisLoss && !configured.warmup.rewarmOnBackendLoss)
        #expect(try Self.parse("warmup: false\n").warmup == WarmupGate.Configuration.off)
        #expect(try Self.parse("warmup: true\n").warmup == WarmupGate.Configuration())
        // A fixed limit: no adaptive one; a small cap lowers the default adaptive bounds.
        #expect(try Self.parse("admission:\n  adaptive: false\n").admission.adaptive == nil)
        #expect(try Self.parse("admission:\n  max_in_flight: 64\n").admission.adaptive?.maximum == 64)
    }

    static let badFixtures: [BadFixture] = [
        BadFixture("misspelt top-level key", "listener:\n  - address: 0.0.0.0:80\n", file: "gateway.yaml", line: 1, path: "listener", message: "unknown key 'listener'", hint: "did you mean 'listeners'?"),
        BadFixture("unknown key far from any known", "colour: blue\n", file: "gateway.yaml", line: 1, path: "colour", message: "unknown key", hint: "known keys: listeners, admin, redis, rules, timeouts, limits, admission, warmup, access_log"),
        BadFixture("port out of range", "listeners:\n  - address: 0.0.0.0:99999\n", file: "gateway.yaml", line: 2, path: "listeners[0].address", message: "is not a number in 0...65535"),
        BadFixture("listener without address", "listeners:\n  - proxy_protocol: true\n", file: "gateway.yaml", line: 2, path: "listeners[0]", message: "required key 'address' is missing"),
        BadFixture("two listeners on one port", "listeners:\n  - address: 0.0.0.0:8080\n  - address: 127.0.0.1:8080\n", file: "gateway.yaml", line: 3, path: "listeners[1].address", message: "clashes with listeners[0].address (0.0.0.0:8080, line 2)"),
        BadFixture("admin on a listener's address", "listeners:\n  - address: 127.0.0.1:9090\nadmin:\n  address: 127.0.0.1:9090\n", file: "gateway.yaml", line: 4, path: "admin.address", message: "clashes with listeners[0].address"),
        BadFixture("empty certificate path", "listeners:\n  - address: 0.0.0.0:443\n    tls:\n      certificate: ''\n      key: key.pem\n", file: "gateway.yaml", line: 4, path: "listeners[0].tls.certificate", message: "must not be empty"),
        BadFixture("tls key missing", "listeners:\n  - address: 0.0.0.0:443\n    tls:\n      certificate: cert.pem\n", file: "gateway.yaml", line: 4, path: "listeners[0].tls", message: "required key 'key' is missing"),
        BadFixture("tls neither self_signed nor files", "listeners:\n  - address: 0.0.0.0:443\n    tls: yes\n", file: "gateway.yaml", line: 3, path: "listeners[0].tls", message: "expected self_signed or a mapping with certificate and key, found a boolean"),
        BadFixture("proxy_protocol not a boolean", "listeners:\n  - address: 0.0.0.0:80\n    proxy_protocol: 'true'\n", file: "gateway.yaml", line: 3, path: "listeners[0].proxy_protocol", message: "expected true or false, found a string"),
        BadFixture("no listeners", "listeners: []\n", file: "gateway.yaml", line: 1, path: "listeners", message: "at least one listener"),
        BadFixture("listeners not a list", "listeners:\n  address: 0.0.0.0:80\n", file: "gateway.yaml", line: 2, path: "listeners", message: "expected a list, found a mapping"),
        BadFixture("duration without unit", "timeouts:\n  header: 10\n", file: "gateway.yaml", line: 2, path: "timeouts.header", message: "'10' is not a duration: '10' has no unit", hint: "write a duration such as 2s or 500ms"),
        BadFixture("zero idle timeout", "timeouts:\n  idle: 0s\n", file: "gateway.yaml", line: 2, path: "timeouts.idle", message: "must be longer than 0s"),
        BadFixture("misspelt timeout", "timeouts:\n  idel: 5s\n", file: "gateway.yaml", line: 2, path: "timeouts.idel", message: "unknown key 'idel'", hint: "did you mean 'idle'?"),
        BadFixture("decimal size unit", "limits:\n  max_body_bytes: 1MB\n", file: "gateway.yaml", line: 2, path: "limits.max_body_bytes", message: "unknown unit 'MB'", hint: "did you mean 1MiB?"),
        BadFixture("zero connections", "limits:\n  max_connections: 0\n", file: "gateway.yaml", line: 2, path: "limits.max_connections", message: "0 is out of range", hint: "at least 1"),
        BadFixture("count written as text", "limits:\n  max_header_count: lots\n", file: "gateway.yaml", line: 2, path: "limits.max_header_count", message: "expected a whole number, found a string"),
        BadFixture("hex count", "limits:\n  max_header_count: 0x10\n", file: "gateway.yaml", line: 2, path: "limits.max_header_count", message: "'0x10' is not a plain decimal number"),
        BadFixture("redis over http", "redis: http://127.0.0.1:6379\n", file: "gateway.yaml", line: 1, path: "redis", message: "the scheme must be redis://, unix://, redis-cluster:// or redis-sentinel://"),
        BadFixture("redis without a server", "redis: redis://\n", file: "gateway.yaml", line: 1, path: "redis", message: "names no server"),
        BadFixture("empty rules path", "rules:\n", file: "gateway.yaml", line: 1, path: "rules", message: "expected a string, found nothing"),
        BadFixture("root is a list", "- listeners\n", file: "gateway.yaml", line: 1, path: "", message: "expected a mapping of keys to values, found a list"),
        BadFixture("key given twice", "redis: redis://a:1\nredis: redis://b:2\n", file: "gateway.yaml", line: 1, path: "", message: "duplicate key 'redis'"),
        BadFixture("broken indentation", "listeners:\n  - address: 0.0.0.0:80\n   proxy_protocol: true\n", file: "gateway.yaml", line: 3, path: "", message: "not valid YAML"),
        BadFixture("adaptive bounds upside down", "admission:\n  adaptive: {min: 50, max: 20}\n", file: "gateway.yaml", line: 2, path: "admission.adaptive", message: "adaptive min (50) is above its max (20)"),
        BadFixture("adaptive max above the cap", "admission:\n  max_in_flight: 100\n  adaptive: {max: 500}\n", file: "gateway.yaml", line: 3, path: "admission.adaptive", message: "adaptive max (500) is above max_in_flight (100)"),
        BadFixture("queue timeout without unit", "admission:\n  queue_timeout: 500\n", file: "gateway.yaml", line: 2, path: "admission.queue_timeout", message: "'500' is not a duration"),
        BadFixture("a share that is no percentage", "warmup:\n  initial_share: half\n", file: "gateway.yaml", line: 2, path: "warmup.initial_share", message: "'half' is not a share", hint: "10%"),
        BadFixture("a share over 100%", "warmup:\n  initial_share: 150%\n", file: "gateway.yaml", line: 2, path: "warmup.initial_share", message: "'150%' is not a share"),
        BadFixture("misspelt warmup key", "warmup:\n  ramp_up: 30s\n", file: "gateway.yaml", line: 2, path: "warmup.ramp_up", message: "unknown key 'ramp_up'"),
        BadFixture("tab indentation", "timeouts:\n\theader: 5s\n", file: "gateway.yaml", line: 2, path: "", message: "not valid YAML", hint: "tabs"),
    ]

    @Test("each bad configuration gets the diagnostic it deserves", arguments: Self.badFixtures)
    func refuses(fixture: BadFixture) {
        let error = #expect(throws: ConfigurationError.self) { try Self.parse(fixture.files[0].text) }
        fixture.check(error?.diagnostics ?? [])
    }
}

import GateCore

/// What `spikegate gateway` runs with: its listeners, the admin listener, where shared state and
/// rules live, timeouts and limits.
///
/// Read from a YAML file (`Deploy/gateway.yaml` is a commented example) or built in code from
/// command-line flags. Every key is optional; a file may be empty. Unknown keys, wrong types and
/// values out of range are errors, all of them reported together. Relative paths (`rules`, TLS
/// files) are resolved against the configuration file's directory.
public struct GatewayConfiguration: Sendable, Hashable {
    /// Where clients connect; never empty.
    public var listeners: [Listener]
    /// The admin listener (metrics, health, blocked clients), or `nil` for none.
    public var admin: Endpoint?
    /// A file holding the admin token: when set, `/blocked` and `POST /rules/reload` want
    /// `Authorization: Bearer TOKEN`.
    public var adminTokenFile: String?
    /// Whether the admin listener tells the answer of an open image CAPTCHA
    /// (`GET /captcha/answer?id=`), for load tests whose simulated people "read" the image.
    /// Off by default; never on a sale with real buyers.
    public var adminRevealsCaptchaAnswers = false
    /// The Redis URL (`redis://host:port[/db]` or `unix:///path`) for state shared between
    /// gateways, or `nil` to keep the state in this process.
    public var redis: String?
    /// The directory of rule files, or `nil` for none.
    public var rulesDirectory: String?
    /// How long to wait for clients and backends.
    public var timeouts: Timeouts
    /// Sizes and counts past which the gateway refuses.
    public var limits: Limits
    /// Requests under way and waiting per upstream (overload shedding).
    public var admission = Admission()
    /// Holding traffic back after a start until the dependencies are warm (`usesRedis` is
    /// not read from the file: the gateway sets it from `redis`).
    public var warmup = WarmupGate.Configuration()
    /// Where the access log goes (one JSON line per request; `access_log:`), or `nil` for none.
    public var accessLog: String?

    /// One listener on `0.0.0.0:8080` when none is given.
    public static let defaultListeners = [Listener(endpoint: Endpoint(host: "0.0.0.0", port: 8080))]

    /// A configuration; every part defaults to what an empty file gives.
    public init(
        listeners: [Listener] = GatewayConfiguration.defaultListeners,
        admin: Endpoint? = nil,
        redis: String? = nil,
        rulesDirectory: String? = nil,
        timeouts: Timeouts = Timeouts(),
        limits: Limits = Limits()
    ) {
        self.listeners = listeners
        self.admin = admin
        self.redis = redis
        self.rulesDirectory = rulesDirectory
        self.timeouts = timeouts
        self.limits = limits
    }

    /// Reads and checks the configuration file at `path`; a file that is missing or unreadable
    /// is an error naming the path.
    public static func load(path: String) throws(ConfigurationError) -> GatewayConfiguration {
        let text: String
        do {
            text = try TextFile.read(path)
        } catch {
            throw ConfigurationError(diagnostics: [error.diagnostic])
        }
        return try self.parse(text, file: path, baseDirectory: TextFile.directory(of: path))
    }

    /// Checks `yaml`, naming `file` in diagnostics and resolving relative paths against
    /// `baseDirectory`.
    public static func parse(_ yaml: String, file: String, baseDirectory: String) throws(ConfigurationError) -> GatewayConfiguration {
        var decoder = GatewayConfigurationDecoder(file: file, baseDirectory: baseDirectory)
        let configuration = decoder.decode(yaml)
        guard decoder.diagnostics.isEmpty else {
            throw ConfigurationError(diagnostics: decoder.diagnostics.sortedByPlace())
        }
        return configuration
    }
}

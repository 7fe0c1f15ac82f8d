import GateCore
import Yams

/// Turns the YAML of a gateway configuration file into a `GatewayConfiguration`, reporting
/// every problem: unknown keys, wrong types, values out of range, listeners that would bind the
/// same address.
struct GatewayConfigurationDecoder {
    private var reader: YAMLReader
    private let baseDirectory: String

    /// Every problem found so far.
    var diagnostics: [Diagnostic] {
        self.reader.diagnostics
    }

    init(file: String, baseDirectory: String) {
        self.reader = YAMLReader(file: file)
        self.baseDirectory = baseDirectory
    }

    /// The configuration `yaml` describes, with defaults for what it leaves out; meaningful only
    /// when `diagnostics` is empty afterwards.
    mutating func decode(_ yaml: String) -> GatewayConfiguration {
        var configuration = GatewayConfiguration()
        let fields = self.reader.fields(
            of: self.reader.root(of: yaml),
            keys: ["listeners", "admin", "redis", "rules", "timeouts", "limits", "admission", "warmup", "access_log"]
        )
        var bound: [(endpoint: Endpoint, value: YAMLValue)] = []
        if let listeners = self.reader.elements(of: fields?["listeners"]) {
            if listeners.isEmpty, let value = fields?["listeners"] {
                self.reader.report("at least one listener is needed", at: value, hint: "add '- address: 0.0.0.0:8080', or leave listeners out for that default")
            }
            configuration.listeners = listeners.compactMap { self.listener($0, bound: &bound) }
        }
        let admin = self.reader.fields(of: fields?["admin"], keys: ["address", "token_file", "captcha_answers"])
        configuration.adminTokenFile = self.path(admin?["token_file"])
        configuration.adminRevealsCaptchaAnswers = self.reader.boolean(admin?["captcha_answers"]) ?? false
        if let address = self.reader.required("address", in: admin), let endpoint = self.reader.endpoint(address, allowingPortZero: true) {
            self.checkUnique(endpoint, at: address, bound: &bound)
            configuration.admin = endpoint
        }
        if let value = fields?["redis"], let url = self.reader.string(value) {
            self.checkRedisURL(url, at: value)
            configuration.redis = url
        }
        configuration.rulesDirectory = self.path(fields?["rules"])
        configuration.accessLog = self.path(fields?["access_log"])
        self.decodeTimeouts(fields?["timeouts"], into: &configuration.timeouts)
        self.decodeLimits(fields?["limits"], into: &configuration.limits)
        self.decodeAdmission(fields?["admission"], into: &configuration.admission)
        self.decodeWarmup(fields?["warmup"], into: &configuration.warmup)
        return configuration
    }

    private mutating func listener(_ value: YAMLValue, bound: inout [(endpoint: Endpoint, value: YAMLValue)]) -> Listener? {
        let fields = self.reader.fields(of: value, keys: ["address", "tls", "proxy_protocol"])
        let address = self.reader.required("address", in: fields)
        let endpoint = self.reader.endpoint(address, allowingPortZero: true)
        let tls = fields?["tls"].flatMap { self.tls($0) }
        let proxyProtocol = self.reader.boolean(fields?["proxy_protocol"]) ?? false
        guard let endpoint, let address else {
            return nil
        }
        self.checkUnique(endpoint, at: address, bound: &bound)
        return Listener(endpoint: endpoint, tls: tls, proxyProtocol: proxyProtocol)
    }

    /// `self_signed`, or a mapping with the `certificate` and `key` PEM paths.
    private mutating func tls(_ value: YAMLValue) -> TLSSource? {
        if case .scalar = value.node, value.node.string == "self_signed" {
            return .selfSigned
        }
        guard case .mapping = value.node else {
            self.reader.reportType(
                of: value,
                expected: "self_signed or a mapping with certificate and key",
                hint: "write 'tls: self_signed' for the demo, or certificate: and key: paths to PEM files below 'tls:'"
            )
            return nil
        }
        let fields = self.reader.fields(of: value, keys: ["certificate", "key"])
        let certificate = self.path(self.reader.required("certificate", in: fields))
        let key = self.path(self.reader.required("key", in: fields))
        guard let certificate, let key else {
            return nil
        }
        return .files(certificate: certificate, key: key)
    }

    /// A non-empty path, resolved against the configuration file's directory.
    private mutating func path(_ value: YAMLValue?) -> String? {
        self.reader.nonEmptyString(value).map { TextFile.resolve($0, against: self.baseDirectory) }
    }

    /// Reports `endpoint` when an earlier listener binds the same port on the same or an
    /// overlapping (wildcard) host; port 0 never clashes, each bind getting its own port.
    private mutating func checkUnique(_ endpoint: Endpoint, at value: YAMLValue, bound: inout [(endpoint: Endpoint, value: YAMLValue)]) {
        let wildcards = ["0.0.0.0", "::"]
        let clash = bound.first { earlier in
            endpoint.port != 0 && earlier.endpoint.port == endpoint.port
                && (earlier.endpoint.host == endpoint.host || wildcards.contains(earlier.endpoint.host) || wildcards.contains(endpoint.host))
        }
        if let clash {
            self.reader.report(
                "\(endpoint) clashes with \(clash.value.path) (\(clash.endpoint), line \(clash.value.line))",
                at: value,
                hint: "give each listener its own port"
            )
        }
        bound.append((endpoint, value))
    }

    /// Only the scheme is checked here; the Redis client reads the rest when it connects.
    private mutating func checkRedisURL(_ url: String, at value: YAMLValue) {
        let hint = "write redis://host:port, redis://host:port/db, unix:///path/to/redis.sock, "
            + "redis-cluster://host:port,host:port (Redis Cluster) or redis-sentinel://host:26379,host:26379/primary-name"
        for scheme in ["redis://", "unix://", "redis-cluster://", "redis-sentinel://"] where url.hasPrefix(scheme) {
            if url.count == scheme.count {
                self.reader.report("'\(url)' names no server", at: value, hint: hint)
            }
            return
        }
        self.reader.report(
            "'\(url)' is not a Redis URL: the scheme must be redis://, unix://, redis-cluster:// or redis-sentinel://",
            at: value,
            hint: hint
        )
    }

    private mutating func decodeTimeouts(_ value: YAMLValue?, into timeouts: inout Timeouts) {
        let durations: [(key: String, field: WritableKeyPath<Timeouts, Duration>, allowingZero: Bool)] = [
            ("header", \.header, false),
            ("idle", \.idle, false),
            ("body_rate_grace", \.bodyRateGrace, true),
            ("upstream_connect", \.upstreamConnect, false),
            ("upstream_response", \.upstreamResponse, false),
            ("drain", \.drain, true),
        ]
        let fields = self.reader.fields(of: value, keys: durations.map(\.key) + ["body_min_rate"])
        for entry in durations {
            if let duration = self.reader.duration(fields?[entry.key], allowingZero: entry.allowingZero) {
                timeouts[keyPath: entry.field] = duration
            }
        }
        if let rate = self.reader.byteSize(fields?["body_min_rate"], in: 0...Int.max) {
            timeouts.bodyMinimumRate = rate
        }
    }

    /// `admission: {max_in_flight, queue, queue_timeout, adaptive: false | {initial, min, max}}`.
    private mutating func decodeAdmission(_ value: YAMLValue?, into admission: inout Admission) {
        let fields = self.reader.fields(of: value, keys: ["max_in_flight", "queue", "queue_timeout", "adaptive"])
        admission.maximumInFlight = self.reader.integer(fields?["max_in_flight"], in: 1...1_000_000) ?? admission.maximumInFlight
        admission.queue = self.reader.integer(fields?["queue"], in: 0...1_000_000) ?? admission.queue
        admission.queueTimeout = self.reader.duration(fields?["queue_timeout"]) ?? admission.queueTimeout
        guard let adaptive = fields?["adaptive"] else {
            if var bounds = admission.adaptive {
                bounds.maximum = min(bounds.maximum, admission.maximumInFlight)
                admission.adaptive = AdaptiveConcurrencyLimit.Configuration(initial: bounds.initial, minimum: min(bounds.minimum, bounds.maximum), maximum: bounds.maximum)
            }
            return
        }
        if adaptive.isBoolean {
            if let on = self.reader.boolean(adaptive), !on {
                admission.adaptive = nil
            }
            return
        }
        guard let bounds = self.reader.fields(of: adaptive, keys: ["initial", "min", "max"]) else {
            return
        }
        let minimum = self.reader.integer(bounds["min"], in: 1...1_000_000) ?? 10
        let maximum = self.reader.integer(bounds["max"], in: 1...1_000_000) ?? admission.maximumInFlight
        let initial = self.reader.integer(bounds["initial"], in: 1...1_000_000) ?? min(100, maximum)
        if minimum > maximum {
            self.reader.report("adaptive min (\(minimum)) is above its max (\(maximum))", at: adaptive, hint: "write min <= initial <= max")
        } else if maximum > admission.maximumInFlight {
            self.reader.report(
                "adaptive max (\(maximum)) is above max_in_flight (\(admission.maximumInFlight))",
                at: adaptive, hint: "the adaptive limit moves under max_in_flight; lower max or raise max_in_flight"
            )
        } else if initial < minimum || initial > maximum {
            self.reader.report("adaptive initial (\(initial)) is outside min..max (\(minimum)...\(maximum))", at: adaptive, hint: "write min <= initial <= max")
        }
        admission.adaptive = AdaptiveConcurrencyLimit.Configuration(initial: initial, minimum: minimum, maximum: maximum)
    }

    /// `warmup: false`, or `{min_healthy_backends, initial_share: 10%, ramp, wait_for_redis,
    /// rewarm_on_redis_loss, rewarm_on_backend_loss}`.
    private mutating func decodeWarmup(_ value: YAMLValue?, into warmup: inout WarmupGate.Configuration) {
        if let value, value.isBoolean {
            if let on = self.reader.boolean(value), !on {
                warmup = WarmupGate.Configuration.off
            }
            return
        }
        let fields = self.reader.fields(
            of: value, keys: ["min_healthy_backends", "initial_share", "ramp", "wait_for_redis", "rewarm_on_redis_loss", "rewarm_on_backend_loss"]
        )
        warmup.waitForRedis = self.reader.boolean(fields?["wait_for_redis"]) ?? warmup.waitForRedis
        warmup.minimumHealthyBackends = self.reader.integer(fields?["min_healthy_backends"], in: 0...10_000) ?? warmup.minimumHealthyBackends
        warmup.ramp = self.reader.duration(fields?["ramp"], allowingZero: true) ?? warmup.ramp
        warmup.rewarmOnRedisLoss = self.reader.boolean(fields?["rewarm_on_redis_loss"]) ?? warmup.rewarmOnRedisLoss
        warmup.rewarmOnBackendLoss = self.reader.boolean(fields?["rewarm_on_backend_loss"]) ?? warmup.rewarmOnBackendLoss
        if let share = fields?["initial_share"], let text = self.reader.string(share) {
            if text.hasSuffix("%"), let percent = Int(text.dropLast()), (0...100).contains(percent) {
                warmup.initialShare = Double(percent) / 100
            } else {
                self.reader.report("'\(text)' is not a share", at: share, hint: "write a percentage from 0% to 100%, e.g. 10%")
            }
        }
    }

    private mutating func decodeLimits(_ value: YAMLValue?, into limits: inout Limits) {
        let sizes: [(key: String, field: WritableKeyPath<Limits, Int>)] = [
            ("max_uri_bytes", \.requestHead.maximumURIBytes),
            ("max_header_bytes", \.requestHead.maximumHeaderBytes),
            ("max_body_bytes", \.requestHead.maximumBodyBytes),
            ("outbound_buffer_bytes", \.outboundBufferBytes),
        ]
        let counts: [(key: String, field: WritableKeyPath<Limits, Int>, minimum: Int)] = [
            ("max_header_count", \.requestHead.maximumHeaderCount, 1),
            ("max_connections", \.maximumConnections, 1),
            ("max_connections_per_ip", \.maximumConnectionsPerIP, 1),
            ("upstream_idle_per_loop", \.upstreamIdlePerLoop, 0),
        ]
        let fields = self.reader.fields(of: value, keys: sizes.map(\.key) + counts.map(\.key))
        for entry in sizes {
            if let bytes = self.reader.byteSize(fields?[entry.key], in: 1...Int.max) {
                limits[keyPath: entry.field] = bytes
            }
        }
        for entry in counts {
            if let count = self.reader.integer(fields?[entry.key], in: entry.minimum...Int.max) {
                limits[keyPath: entry.field] = count
            }
        }
    }
}

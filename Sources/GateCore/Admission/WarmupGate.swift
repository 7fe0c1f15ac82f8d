/// Holds public traffic back after a (re)start until the gateway's dependencies are warm, then
/// lets it in gradually: `starting → warming → ramping → ready`, and `draining` at the end.
///
/// - `starting`: the process is up, nothing checked yet; everything refused.
/// - `warming`: waiting for Redis to answer (when one is configured), the scripts to be
///   loaded, the rules compiled and `minimumHealthyBackends` to pass their health checks;
///   everything refused (503 with `Retry-After`).
/// - `ramping`: the admitted share rises linearly from `initialShare` to 1 over `ramp`.
/// - `ready`: everything admitted.
/// - `draining`: shutting down; new requests refused. Terminal.
/// Losing Redis or every healthy backend later sends a `ramping` or `ready` gate back to
/// `warming` (each configurable). Pure: time and the random draw are passed in.
public struct WarmupGate: Sendable {
    public enum Phase: String, Sendable, Hashable, CaseIterable {
        case starting
        case warming
        case ramping
        case ready
        case draining
    }

    public struct Configuration: Sendable, Hashable {
        public var minimumHealthyBackends: Int
        public var initialShare: Double
        public var ramp: Duration
        /// Whether a Redis is configured (set by the gateway).
        public var usesRedis: Bool
        /// Whether that Redis must answer and the scripts be loaded before traffic is let in
        /// (`false`: each rule's `on_store_error` decides while it does not).
        public var waitForRedis: Bool
        /// Whether losing Redis later sends the gate back to `warming` (off by default: the
        /// rules' `on_store_error` says what a purchase does without Redis).
        public var rewarmOnRedisLoss: Bool
        public var rewarmOnBackendLoss: Bool

        public init(
            minimumHealthyBackends: Int = 1, initialShare: Double = 0.1, ramp: Duration = .zero,
            usesRedis: Bool = false, waitForRedis: Bool = true, rewarmOnRedisLoss: Bool = false, rewarmOnBackendLoss: Bool = true
        ) {
            self.minimumHealthyBackends = max(0, minimumHealthyBackends)
            self.initialShare = min(1, max(0, initialShare))
            self.ramp = max(.zero, ramp)
            self.usesRedis = usesRedis
            self.waitForRedis = waitForRedis
            self.rewarmOnRedisLoss = rewarmOnRedisLoss
            self.rewarmOnBackendLoss = rewarmOnBackendLoss
        }

        /// No gate: ready at the first update, never sent back (`warmup: false`).
        public static let off = Configuration(
            minimumHealthyBackends: 0, initialShare: 1, ramp: .zero, waitForRedis: false, rewarmOnRedisLoss: false, rewarmOnBackendLoss: false
        )
    }

    /// What the gateway knows about its dependencies now.
    public struct Conditions: Sendable, Hashable {
        public var redisAnswers: Bool
        public var scriptsLoaded: Bool
        public var rulesCompiled: Bool
        public var healthyBackends: Int

        public init(redisAnswers: Bool = false, scriptsLoaded: Bool = false, rulesCompiled: Bool = false, healthyBackends: Int = 0) {
            self.redisAnswers = redisAnswers
            self.scriptsLoaded = scriptsLoaded
            self.rulesCompiled = rulesCompiled
            self.healthyBackends = healthyBackends
        }
    }

    public let configuration: Configuration
    public private(set) var phase: Phase = .starting
    private var rampStart: MonotonicInstant?

    public init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    /// Why the gate is not (yet) letting traffic through, for `/readyz` and the 503's reason;
    /// `nil` when `conditions` are met.
    public func waitingFor(_ conditions: Conditions) -> String? {
        var missing: [String] = []
        let needsRedis = self.configuration.usesRedis && self.configuration.waitForRedis
        if needsRedis && !conditions.redisAnswers {
            missing.append("redis")
        }
        if needsRedis && !conditions.scriptsLoaded {
            missing.append("redis scripts")
        }
        if !conditions.rulesCompiled {
            missing.append("rules")
        }
        if conditions.healthyBackends < self.configuration.minimumHealthyBackends {
            missing.append("\(self.configuration.minimumHealthyBackends) healthy backend(s), \(conditions.healthyBackends) so far")
        }
        return missing.isEmpty ? nil : "waiting for " + missing.joined(separator: ", ")
    }

    /// Moves the gate on with what is known at `now`; returns the phase.
    @discardableResult
    public mutating func update(_ conditions: Conditions, now: MonotonicInstant) -> Phase {
        switch self.phase {
        case .draining:
            break
        case .starting, .warming:
            if self.waitingFor(conditions) == nil {
                self.phase = .ramping
                self.rampStart = now
                self.finishRampIfDue(now: now)
            } else {
                self.phase = .warming
            }
        case .ramping, .ready:
            let lostRedis = self.configuration.usesRedis && !conditions.redisAnswers && self.configuration.rewarmOnRedisLoss
            let lostBackends = conditions.healthyBackends == 0 && self.configuration.rewarmOnBackendLoss
            if lostRedis || lostBackends {
                self.phase = .warming
                self.rampStart = nil
            } else if self.phase == .ramping {
                self.finishRampIfDue(now: now)
            }
        }
        return self.phase
    }

    private mutating func finishRampIfDue(now: MonotonicInstant) {
        if let start = self.rampStart, now - start >= self.configuration.ramp {
            self.phase = .ready
        }
    }

    /// The share of public requests let through at `now` (0…1).
    public func share(now: MonotonicInstant) -> Double {
        switch self.phase {
        case .starting, .warming, .draining:
            return 0
        case .ready:
            return 1
        case .ramping:
            guard let start = self.rampStart, self.configuration.ramp > .zero else {
                return 1
            }
            let progress = min(1, max(0, (now - start) / self.configuration.ramp))
            return self.configuration.initialShare + (1 - self.configuration.initialShare) * progress
        }
    }

    /// Whether a request with uniform random `draw` in [0, 1) is let through at `now`.
    public func admits(draw: Double, now: MonotonicInstant) -> Bool {
        draw < self.share(now: now)
    }

    /// Shutting down: nothing new is admitted from now on.
    public mutating func drain() {
        self.phase = .draining
        self.rampStart = nil
    }
}

import Foundation
import GateCore
import GateRules
import Yams

/// Why a scenario file could not be used: every problem found in it (file, line, column, key
/// path, hint), as the rule files report theirs.
public struct ScenarioError: Error, Sendable, Hashable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics
    }

    public var description: String {
        self.diagnostics.map(\.description).joined(separator: "\n")
    }
}

/// Reads a scenario file:
///
/// ```yaml
/// name: mixed attack
/// purchase: {method: POST, path: /buy/ticket}   # the default
/// account_header: X-Account-Id                  # the default
/// pay: true                                     # pay each order reserved (default)
/// time_limit: 2m                                # default 5m
/// max_connections: 2000                         # open at once, default 2000
/// request_timeout: 10s
/// populations:
///   - name: people
///     users: 1000
///     real: true
///     accounts: per_user          # | none | {shared: 50}
///     addresses: {from: 127.1.0.1, count: 1000}   # default: one per user
///     arrival: at_once            # | {ramp: 2s} | {poisson: 500}  (users per second)
///     start_after: 0s
///     attempts: 3
///     parallel: 1                 # requests per attempt at once, one connection each
///     think: 200ms
///     honor_retry_after: true
///     stop_when_banned: true
///     challenges: never           # | {solve_after: 2s, success: 0.9}
/// ```
public struct ScenarioDecoder {
    private var reader: YAMLReader
    /// Where the next population without `addresses` starts.
    private var nextDefaultAddress = IPv4(127, 1, 0, 1)

    public init(file: String) {
        self.reader = YAMLReader(file: file)
    }

    /// Reads the scenario file at `path`.
    public static func load(path: String) throws -> Scenario {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ScenarioError(diagnostics: [Diagnostic(file: path, line: 0, column: 0, path: "", message: "cannot read the scenario: \(error.localizedDescription)")])
        }
        return try Self.decode(text, file: path)
    }

    /// The scenario `text` describes, or every problem in it.
    public static func decode(_ text: String, file: String) throws -> Scenario {
        var decoder = ScenarioDecoder(file: file)
        let scenario = decoder.decode(text)
        guard decoder.reader.diagnostics.isEmpty, let scenario else {
            let diagnostics = decoder.reader.diagnostics
            throw ScenarioError(diagnostics: diagnostics.isEmpty ? [Diagnostic(file: file, line: 0, column: 0, path: "", message: "the scenario is empty")] : diagnostics)
        }
        return scenario
    }

    private mutating func decode(_ text: String) -> Scenario? {
        guard let root = self.reader.root(of: text) else {
            return nil
        }
        let fields = self.reader.fields(
            of: root,
            keys: ["name", "purchase", "account_header", "pay", "time_limit", "max_connections", "request_timeout", "populations"]
        )
        var scenario = Scenario(name: self.reader.nonEmptyString(self.reader.required("name", in: fields)) ?? "")
        if let purchase = self.reader.fields(of: fields?["purchase"], keys: ["method", "path", "body"]) {
            if let method = self.reader.nonEmptyString(purchase["method"]) {
                if method.allSatisfy({ $0.isASCII && $0.isUppercase }) {
                    scenario.purchase.method = method
                } else if let value = purchase["method"] {
                    self.reader.report("'\(method)' is not an HTTP method", at: value, hint: "write it in capitals, as POST")
                }
            }
            if let path = self.reader.nonEmptyString(purchase["path"]) {
                if path.hasPrefix("/"), !path.contains(" ") {
                    scenario.purchase.path = path
                } else if let value = purchase["path"] {
                    self.reader.report("'\(path)' is not a request path", at: value, hint: "start it with '/', no spaces")
                }
            }
            scenario.purchase.body = self.reader.string(purchase["body"]) ?? scenario.purchase.body
        }
        scenario.accountHeader = self.reader.nonEmptyString(fields?["account_header"]) ?? scenario.accountHeader
        scenario.pay = self.reader.boolean(fields?["pay"]) ?? scenario.pay
        scenario.timeLimit = self.duration(fields?["time_limit"]) ?? scenario.timeLimit
        scenario.maximumConnections = self.reader.integer(fields?["max_connections"], in: 1...100_000) ?? scenario.maximumConnections
        scenario.requestTimeout = self.duration(fields?["request_timeout"]) ?? scenario.requestTimeout
        var names: Set<String> = []
        if let list = self.reader.elements(of: self.reader.required("populations", in: fields)) {
            if list.isEmpty, let value = fields?["populations"] {
                self.reader.report("at least one population is needed", at: value)
            }
            for element in list {
                guard let population = self.population(element) else {
                    continue
                }
                if !names.insert(population.name).inserted {
                    self.reader.report("population '\(population.name)' is named twice", at: element, hint: "each population needs its own name (its accounts are named after it)")
                }
                if let other = scenario.populations.first(where: { $0.addresses.overlaps(population.addresses) }) {
                    self.reader.report(
                        "population '\(population.name)' (\(population.addresses)) shares source addresses with '\(other.name)' (\(other.addresses))",
                        at: element,
                        hint: "give each population its own addresses: {from: 127.x.y.z, count: N} (the gateway tells clients apart by address)"
                    )
                }
                scenario.populations.append(population)
            }
        }
        return scenario
    }

    /// The longest duration a scenario may give anything: a replay is bounded.
    static let longestDuration: Duration = .seconds(24 * 3_600)

    /// A duration of at most a day.
    private mutating func duration(_ value: YAMLValue?, allowingZero: Bool = false) -> Duration? {
        guard let duration = self.reader.duration(value, allowingZero: allowingZero), let value else {
            return nil
        }
        guard duration <= Self.longestDuration else {
            self.reader.report("\(duration) is longer than a day", at: value, hint: "a replay is bounded: give at most 24h")
            return nil
        }
        return duration
    }

    private mutating func population(_ value: YAMLValue) -> Population? {
        let fields = self.reader.fields(of: value, keys: [
            "name", "users", "real", "accounts", "addresses", "arrival", "start_after", "attempts", "parallel", "think",
            "honor_retry_after", "stop_when_banned", "challenges",
        ])
        let name = self.reader.nonEmptyString(self.reader.required("name", in: fields))
        if let name, let at = fields?["name"], !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
            self.reader.report("'\(name)' is not a plain name", at: at, hint: "letters, digits, '-' and '_' (accounts are named after it)")
        }
        let users = self.reader.integer(self.reader.required("users", in: fields), in: 1...10_000_000)
        // Every key is read (and its problems reported) before a missing name or count is.
        var population = Population(name: name ?? "", users: users ?? 1)
        population.real = self.reader.boolean(fields?["real"]) ?? population.real
        population.accounts = self.accounts(fields?["accounts"]) ?? population.accounts
        if let addresses = self.addresses(fields?["addresses"], users: population.users) {
            population.addresses = addresses
        } else {
            // Populations without addresses get consecutive ranges from 127.1.0.1, none shared.
            population.addresses = AddressRange(first: self.nextDefaultAddress, count: population.users)
            self.nextDefaultAddress = AddressRange(first: self.nextDefaultAddress, count: population.users + 1).last
        }
        population.arrival = self.arrival(fields?["arrival"]) ?? population.arrival
        population.startAfter = self.duration(fields?["start_after"], allowingZero: true) ?? population.startAfter
        population.attempts = self.reader.integer(fields?["attempts"], in: 1...100_000) ?? population.attempts
        population.parallel = self.reader.integer(fields?["parallel"], in: 1...1_000) ?? population.parallel
        population.think = self.duration(fields?["think"], allowingZero: true) ?? population.think
        population.honorRetryAfter = self.reader.boolean(fields?["honor_retry_after"]) ?? population.honorRetryAfter
        population.stopWhenBanned = self.reader.boolean(fields?["stop_when_banned"]) ?? population.stopWhenBanned
        population.challenges = self.challenges(fields?["challenges"]) ?? population.challenges
        guard name != nil, users != nil else {
            return nil
        }
        return population
    }

    private mutating func accounts(_ value: YAMLValue?) -> Population.Accounts? {
        guard let value else {
            return nil
        }
        if case .scalar(let scalar) = value.node {
            switch scalar.string {
            case "per_user": return .perUser
            case "none": return Population.Accounts.none
            default:
                self.reader.report("unknown accounts '\(scalar.string)'", at: value, hint: "per_user, none, or {shared: N}")
                return nil
            }
        }
        let fields = self.reader.fields(of: value, keys: ["shared"])
        return self.reader.integer(self.reader.required("shared", in: fields), in: 1...10_000_000).map { .shared(count: $0) }
    }

    private mutating func addresses(_ value: YAMLValue?, users: Int) -> AddressRange? {
        let fields = self.reader.fields(of: value, keys: ["from", "count"])
        guard let fields else {
            return nil
        }
        let count = self.reader.integer(fields["count"], in: 1...10_000_000) ?? users
        guard let from = self.reader.required("from", in: fields), let text = self.reader.string(from) else {
            return nil
        }
        guard let first = IPv4(text), first.value >> 24 == 127 else {
            self.reader.report("'\(text)' is not an address of 127.0.0.0/8", at: from, hint: "source addresses are bound on this machine: every 127.x.y.z is, on Linux")
            return nil
        }
        let range = AddressRange(first: first, count: count)
        guard range.last.value >> 24 == 127 else {
            self.reader.report("\(count) addresses from \(text) run past 127.255.255.254", at: from, hint: "start lower, or use fewer")
            return nil
        }
        return range
    }

    private mutating func arrival(_ value: YAMLValue?) -> Population.Arrival? {
        guard let value else {
            return nil
        }
        if case .scalar(let scalar) = value.node {
            guard scalar.string == "at_once" else {
                self.reader.report("unknown arrival '\(scalar.string)'", at: value, hint: "at_once, {ramp: 2s} or {poisson: USERS_PER_SECOND}")
                return nil
            }
            return .atOnce
        }
        guard let fields = self.reader.fields(of: value, keys: ["ramp", "poisson"]) else {
            return nil
        }
        switch (fields["ramp"], fields["poisson"]) {
        case (let ramp?, nil):
            return self.duration(ramp).map { .ramp($0) }
        case (nil, let poisson?):
            return self.number(poisson, in: 0.001...10_000_000).map { .poisson(perSecond: $0) }
        default:
            self.reader.report("give one of ramp or poisson", at: value, hint: "{ramp: 2s} or {poisson: 500}")
            return nil
        }
    }

    private mutating func challenges(_ value: YAMLValue?) -> Population.ChallengeSolving? {
        guard let value else {
            return nil
        }
        if case .scalar(let scalar) = value.node {
            guard scalar.string == "never" else {
                self.reader.report("unknown challenge handling '\(scalar.string)'", at: value, hint: "never, or {solve_after: 2s, success: 0.9}")
                return nil
            }
            return .never
        }
        let fields = self.reader.fields(of: value, keys: ["solve_after", "success"])
        let after = self.duration(fields?["solve_after"], allowingZero: true) ?? .zero
        let success = fields?["success"].flatMap { self.number($0, in: 0...1) } ?? 1
        return .solve(after: after, success: success)
    }

    /// A number (whole or decimal) within `range`.
    private mutating func number(_ value: YAMLValue, in range: ClosedRange<Double>) -> Double? {
        guard case .scalar(let scalar) = value.node, value.tagName == .int || value.tagName == .float, let number = Double(scalar.string) else {
            self.reader.reportType(of: value, expected: "a number", hint: "from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        guard range.contains(number) else {
            self.reader.report("\(scalar.string) is out of range", at: value, hint: "from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return number
    }
}

import Foundation
import Histogram
import Synchronization

/// What one population did and got, counted while the replay runs (every user's task adds to
/// it; one lock, taken once per answer).
final class PopulationTally: Sendable {
    struct Counts: Sendable {
        var usersStarted = 0
        var usersDone = 0
        /// Requests sent (purchase attempts times their parallel requests).
        var requests = 0
        var outcomes: [Outcome: Int] = [:]
        var paid = 0
        var paymentFailures = 0
        var solved = 0
        var solveFailures = 0
        /// Users who ended holding a ticket; real ones who ended without (for undersold).
        var usersWithTicket = 0
        var usersWithoutTicket = 0
        /// Accounts that got a "bought" answer, and how many times.
        var boughtByAccount: [String: Int] = [:]
        /// What went wrong, by kind (the first 20 kinds): errors, failed solutions and payments.
        var errorSamples: [String: Int] = [:]
        var latencies = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)

        /// Counts one more problem of kind `detail` (new kinds only while fewer than 20 are known).
        mutating func sample(_ detail: String) {
            if self.errorSamples.count < 20 || self.errorSamples[detail] != nil {
                self.errorSamples[detail, default: 0] += 1
            }
        }
    }

    let population: Population
    let counts = Mutex(Counts())

    init(population: Population) {
        self.population = population
    }

    func userStarted() {
        self.counts.withLock { $0.usersStarted += 1 }
    }

    func userDone(holdsTicket: Bool) {
        self.counts.withLock { counts in
            counts.usersDone += 1
            if holdsTicket {
                counts.usersWithTicket += 1
            } else {
                counts.usersWithoutTicket += 1
            }
        }
    }

    /// An answer to a purchase request, after `micros` µs.
    func record(_ answer: Answer, account: String?, micros: UInt64) {
        self.counts.withLock { counts in
            counts.requests += 1
            counts.outcomes[answer.outcome, default: 0] += 1
            counts.latencies.record(min(micros, 120_000_000))
            if answer.outcome == .bought, let account {
                counts.boughtByAccount[account, default: 0] += 1
            }
            if answer.outcome == .error, let detail = answer.detail {
                counts.sample(detail)
            }
        }
    }

    func recordPayment(ok: Bool, detail: String?) {
        self.counts.withLock { counts in
            if ok {
                counts.paid += 1
            } else {
                counts.paymentFailures += 1
                if let detail {
                    counts.sample("payment: " + detail)
                }
            }
        }
    }

    func recordSolution(ok: Bool, detail: String?) {
        self.counts.withLock { counts in
            if ok {
                counts.solved += 1
            } else {
                counts.solveFailures += 1
                if let detail {
                    counts.sample("challenge: " + detail)
                }
            }
        }
    }

    /// The population's part of the report.
    func summary() -> ReplayReport.PopulationSummary {
        self.counts.withLock { counts in
            let twice = counts.boughtByAccount.values.filter { $0 > 1 }.count
            let histogram = counts.latencies
            let hasSamples = histogram.totalCount > 0
            func millis(_ micros: UInt64) -> Double {
                (Double(micros) / 1_000 * 100).rounded() / 100
            }
            return ReplayReport.PopulationSummary(
                name: self.population.name,
                real: self.population.real,
                users: self.population.users,
                usersStarted: counts.usersStarted,
                requests: counts.requests,
                bought: counts.outcomes[.bought, default: 0],
                paid: counts.paid,
                paymentFailures: counts.paymentFailures,
                alreadyHolds: counts.outcomes[.alreadyHolds, default: 0],
                challenged: counts.outcomes[.challenged, default: 0],
                solved: counts.solved,
                solveFailures: counts.solveFailures,
                banned: counts.outcomes[.banned, default: 0],
                inFlightRefused: counts.outcomes[.inFlightRefused, default: 0],
                rateLimited: counts.outcomes[.rateLimited, default: 0],
                shed: counts.outcomes[.shed, default: 0],
                warmupRefused: counts.outcomes[.warmupRefused, default: 0],
                denied: counts.outcomes[.denied, default: 0],
                unconfirmed: counts.outcomes[.unconfirmed, default: 0],
                storeUnavailable: counts.outcomes[.storeUnavailable, default: 0],
                noBackend: counts.outcomes[.noBackend, default: 0],
                soldOut: counts.outcomes[.soldOut, default: 0],
                answered: counts.outcomes[.answered, default: 0],
                errors: counts.outcomes[.error, default: 0],
                problems: counts.errorSamples.map { ReplayReport.Problem(detail: $0.key, count: $0.value) }
                    .sorted { ($0.count, $1.detail) > ($1.count, $0.detail) },
                usersWithTicket: counts.usersWithTicket,
                usersWithoutTicket: counts.usersWithoutTicket,
                accountsBoughtTwice: twice,
                latencyMillis: ReplayReport.Latency(
                    p50: hasSamples ? millis(histogram.valueAtPercentile(50)) : 0,
                    p90: hasSamples ? millis(histogram.valueAtPercentile(90)) : 0,
                    p99: hasSamples ? millis(histogram.valueAtPercentile(99)) : 0,
                    max: hasSamples ? millis(histogram.max) : 0
                )
            )
        }
    }
}

/// The result of a replay: per population, and for the sale as a whole.
public struct ReplayReport: Sendable, Codable, Hashable {
    public var scenario: String
    public var target: String
    public var seconds: Double
    public var requests: Int
    public var requestsPerSecond: Double
    /// Users not started (or not finished) when the time limit struck.
    public var usersCutShort: Int
    public var populations: [PopulationSummary]
    /// From the sale's own records (Redis), when the replay was given them.
    public var sale: SaleSummary?

    public struct Latency: Sendable, Codable, Hashable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var max: Double
    }

    public struct PopulationSummary: Sendable, Codable, Hashable {
        public var name: String
        public var real: Bool
        public var users: Int
        public var usersStarted: Int
        public var requests: Int
        public var bought: Int
        public var paid: Int
        public var paymentFailures: Int
        public var alreadyHolds: Int
        public var challenged: Int
        public var solved: Int
        public var solveFailures: Int
        public var banned: Int
        public var inFlightRefused: Int
        public var rateLimited: Int
        public var shed: Int
        public var warmupRefused: Int
        public var denied: Int
        /// Purchases and payments the node answered "not confirmed by enough replicas".
        public var unconfirmed: Int
        /// Answers "stock store unavailable" (Redis down or failing over).
        public var storeUnavailable: Int
        /// The gateway's "no backend is available" (every ticket node failing its checks).
        public var noBackend: Int
        public var soldOut: Int
        /// Answers below 500 to requests that are not purchases (capture replay).
        public var answered: Int
        public var errors: Int
        /// What went wrong (errors, failed solutions and payments), the first 20 kinds, most
        /// frequent first.
        public var problems: [Problem]
        public var usersWithTicket: Int
        public var usersWithoutTicket: Int
        /// Accounts answered "bought" more than once (must be 0).
        public var accountsBoughtTwice: Int
        public var latencyMillis: Latency
    }

    /// A kind of problem and how often it happened.
    public struct Problem: Sendable, Codable, Hashable {
        public var detail: String
        public var count: Int
    }

    public struct SaleSummary: Sendable, Codable, Hashable {
        public var stock: Int
        public var sold: Int
        public var paid: Int
        /// Sold beyond the stock (must be 0).
        public var oversold: Int
        /// Accounts holding more than one live order (must be 0).
        public var accountsWithTwoTickets: Int
        /// Tickets left while real users went without one.
        public var undersold: Int
        /// Of the tickets sold, the share held by real users (from the orders' accounts).
        public var realShare: Double
    }

    /// Tickets bought by every population (answers).
    public var bought: Int {
        self.populations.reduce(0) { $0 + $1.bought }
    }

    /// The report as indented JSON.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The report as a terminal table.
    public func table() -> String {
        var lines: [String] = []
        lines.append("scenario \(self.scenario) against \(self.target): \(Self.number(self.requests)) requests in \(String(format: "%.1f", self.seconds)) s (\(Self.number(Int(self.requestsPerSecond))) req/s)")
        if self.usersCutShort > 0 {
            lines.append("time limit reached: \(Self.number(self.usersCutShort)) users cut short")
        }
        let columns = [
            "population", "users", "requests", "bought", "paid", "holds", "challenged", "solved", "banned", "in-flight", "limited",
            "shed", "down", "sold-out", "other", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms",
        ]
        let rows = self.populations.map { p -> [String] in
            [
                p.name + (p.real ? " (real)" : ""), Self.number(p.users), Self.number(p.requests), Self.number(p.bought), Self.number(p.paid),
                Self.number(p.alreadyHolds), Self.number(p.challenged), Self.number(p.solved), Self.number(p.banned), Self.number(p.inFlightRefused),
                Self.number(p.rateLimited), Self.number(p.shed + p.warmupRefused), Self.number(p.storeUnavailable + p.noBackend),
                Self.number(p.soldOut), Self.number(p.answered), Self.number(p.errors),
                Self.decimal(p.latencyMillis.p50), Self.decimal(p.latencyMillis.p90), Self.decimal(p.latencyMillis.p99), Self.decimal(p.latencyMillis.max),
            ]
        }
        let widths = columns.indices.map { index in ([columns[index]] + rows.map { $0[index] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == 0 ? cell.padding(toLength: widths[index], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[index] - cell.count) + cell
            }.joined(separator: "  ")
        }
        lines.append(line(columns))
        lines.append(contentsOf: rows.map(line))
        for population in self.populations where !population.problems.isEmpty {
            let samples = population.problems.prefix(3).map { "\($0.count)× \($0.detail)" }
            lines.append("\(population.name) problems: " + samples.joined(separator: "; "))
        }
        for population in self.populations where population.unconfirmed + population.storeUnavailable + population.noBackend > 0 {
            lines.append(
                "\(population.name) met an outage: \(Self.number(population.storeUnavailable)) 'stock store unavailable', "
                    + "\(Self.number(population.noBackend)) 'no backend available', "
                    + "\(Self.number(population.unconfirmed)) 'not confirmed by enough replicas' (each asked again)"
            )
        }
        if let sale = self.sale {
            lines.append(
                "sale: stock \(Self.number(sale.stock)), sold \(Self.number(sale.sold)), paid \(Self.number(sale.paid)), "
                    + "oversold \(sale.oversold), accounts with two tickets \(sale.accountsWithTwoTickets), undersold \(sale.undersold), "
                    + "won by real users \(String(format: "%.1f", sale.realShare * 100))%"
            )
        }
        return lines.joined(separator: "\n")
    }

    static func number(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var grouped = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 {
                grouped.append(",")
            }
            grouped.append(digit)
        }
        return (value < 0 ? "-" : "") + grouped
    }

    static func decimal(_ value: Double) -> String {
        value >= 100 ? String(Int(value.rounded())) : String(format: "%.1f", value)
    }
}

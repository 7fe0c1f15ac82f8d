import Foundation
import GateCore
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Replays a scenario against a live gateway: every user of every population arrives on its
/// curve, from its own source address, and tries to buy (solving challenges, honouring
/// `Retry-After`, paying what it reserved) until it holds a ticket, hears the sale is over, gives
/// up or runs out of attempts. Counts everything per population.
public final class Replayer: Sendable {
    public let scenario: Scenario
    public let target: ReplayTarget
    private let tls: NIOSSLContext?
    private let group: any EventLoopGroup
    private let tallies: [PopulationTally]
    /// Each population's connections: `maximum_connections` shared in proportion to the users
    /// (each at least its parallel width), so bots arriving in a mass cannot keep the people
    /// who come later from arriving on time.
    private let slots: [ConnectionSlots]
    private let workers: [Int]
    private let captchaAnswers: CaptchaAnswers?

    /// A replay of `scenario` at `target`. For `https`, the gateway's certificate is checked
    /// against `caFile` (PEM) or the system's roots, unless `insecure`. Image CAPTCHAs are
    /// "read" through `captchaAnswers` (without it, a population meeting one fails it).
    public init(
        scenario: Scenario,
        target: ReplayTarget,
        caFile: String? = nil,
        insecure: Bool = false,
        captchaAnswers: CaptchaAnswers? = nil,
        group: any EventLoopGroup
    ) throws {
        self.scenario = scenario
        self.target = target
        self.group = group
        self.captchaAnswers = captchaAnswers
        self.tls = try Self.tlsContext(for: target, caFile: caFile, insecure: insecure)
        self.tallies = scenario.populations.map(PopulationTally.init)
        let total = max(1, scenario.users)
        let widths = scenario.populations.map { min($0.parallel, scenario.maximumConnections) }
        let budgets = zip(scenario.populations, widths).map { population, width in
            max(width, scenario.maximumConnections * population.users / total)
        }
        self.slots = budgets.map(ConnectionSlots.init)
        // A worker runs one user at a time and holds its parallel width of connections.
        self.workers = zip(zip(scenario.populations, widths), budgets).map { pair, budget in
            min(pair.0.users, max(1, budget / max(1, pair.1)))
        }
    }

    /// The client TLS context for an `https` target: its certificate checked against `caFile`
    /// (PEM) or the system's roots, unless `insecure`; `nil` for `http`.
    static func tlsContext(for target: ReplayTarget, caFile: String?, insecure: Bool) throws -> NIOSSLContext? {
        guard target.tls else {
            return nil
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if insecure {
            configuration.certificateVerification = .none
        } else if let caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw ReplayError("cannot read the CA file \(caFile)")
            }
            configuration.trustRoots = .file(caFile)
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// Runs the replay to its end (or the scenario's time limit); `progress` hears a status line
    /// about once a second.
    public func run(progress: (@Sendable (String) -> Void)? = nil) async -> ReplayReport {
        let schedules = self.schedules()
        let users = self.scenario.users
        let start = ContinuousClock.now
        let deadline = start + self.scenario.timeLimit
        let run = RunState(populations: schedules.count)
        await withTaskGroup(of: Void.self) { group in
            if let progress {
                group.addTask {
                    while !run.finished.load(ordering: .relaxed) {
                        try? await Task.sleep(for: .seconds(1))
                        progress(self.progressLine(elapsed: ContinuousClock.now - start, users: users))
                    }
                }
            }
            await withTaskGroup(of: Void.self) { workers in
                for (population, schedule) in schedules.enumerated() {
                    for _ in 0..<self.workers[population] {
                        workers.addTask {
                            while true {
                                let index = run.next[population].value.add(1, ordering: .relaxed).oldValue
                                guard index < schedule.count, ContinuousClock.now < deadline else {
                                    return
                                }
                                // A user due after the time limit never starts (counted as cut short).
                                let due = start + schedule[index]
                                guard due < deadline else {
                                    return
                                }
                                if due > ContinuousClock.now {
                                    try? await Task.sleep(until: due, clock: .continuous)
                                }
                                await self.runUser(index, of: population, deadline: deadline)
                            }
                        }
                    }
                }
            }
            run.finished.store(true, ordering: .relaxed)
            group.cancelAll()
        }
        let elapsed = ContinuousClock.now - start
        let populations = self.tallies.map { $0.summary() }
        let requests = populations.reduce(0) { $0 + $1.requests }
        let started = populations.reduce(0) { $0 + $1.usersStarted }
        return ReplayReport(
            scenario: self.scenario.name,
            target: self.target.description,
            seconds: (elapsed.seconds * 100).rounded() / 100,
            requests: requests,
            requestsPerSecond: elapsed.seconds > 0 ? (Double(requests) / elapsed.seconds).rounded() : 0,
            usersCutShort: users - started,
            populations: populations,
            sale: nil
        )
    }

    /// Each population's users' arrivals after the start, in user order (which is time order).
    private func schedules() -> [[Duration]] {
        self.scenario.populations.map { population in
            var arrivals: [Duration] = []
            arrivals.reserveCapacity(population.users)
            var previous = Duration.zero
            for user in 0..<population.users {
                previous = population.arrival(of: user, previous: previous, uniform: Double.random(in: 0..<1))
                arrivals.append(previous)
            }
            return arrivals
        }
    }

    private func progressLine(elapsed: Duration, users: Int) -> String {
        let summaries = self.tallies.map { $0.summary() }
        let started = summaries.reduce(0) { $0 + $1.usersStarted }
        let requests = summaries.reduce(0) { $0 + $1.requests }
        let bought = summaries.reduce(0) { $0 + $1.bought }
        let refused = summaries.reduce(0) { $0 + $1.challenged + $1.banned + $1.inFlightRefused + $1.rateLimited + $1.denied }
        let shed = summaries.reduce(0) { $0 + $1.shed + $1.warmupRefused }
        let errors = summaries.reduce(0) { $0 + $1.errors }
        return String(format: "%6.1fs", elapsed.seconds)
            + "  users \(ReplayReport.number(started))/\(ReplayReport.number(users))  requests \(ReplayReport.number(requests))"
            + "  bought \(ReplayReport.number(bought))  refused \(ReplayReport.number(refused))  shed \(ReplayReport.number(shed))  errors \(ReplayReport.number(errors))"
    }

    // MARK: One user

    /// One request sent: the connection to reuse (`nil` after a failure), the answer read, the
    /// body, and the time from sending (connecting, for a new connection) to the answer.
    private struct Exchange: Sendable {
        let connection: ReplayConnection?
        let answer: Answer
        let status: Int
        let body: String
        let micros: UInt64
    }

    private func runUser(_ index: Int, of populationIndex: Int, deadline: ContinuousClock.Instant) async {
        let tally = self.tallies[populationIndex]
        let slots = self.slots[populationIndex]
        let population = tally.population
        let account = population.account(of: index)
        let source = population.address(of: index)
        let width = min(population.parallel, self.scenario.maximumConnections)
        tally.userStarted()
        await slots.acquire(width)
        var connections = [ReplayConnection?](repeating: nil, count: width)
        var pass: String?
        var holdsTicket = false
        /// A purchase answered "not confirmed": if a later attempt says the account holds it,
        /// it is this user's.
        var unconfirmedOrder: String?
        attempts: for attempt in 0..<population.attempts {
            guard ContinuousClock.now < deadline else {
                break
            }
            var headers: [(String, String)] = []
            if let account {
                headers.append((self.scenario.accountHeader, account))
            }
            if let pass {
                headers.append(("X-SpikeGate-Pass", pass))
            }
            let sent = await withTaskGroup(of: (Int, Exchange).self) { group in
                for slot in 0..<width {
                    let connection = connections[slot]
                    let requestHeaders = headers
                    group.addTask {
                        let purchase = self.scenario.purchase
                        return (slot, await self.send(method: purchase.method, path: purchase.path, headers: requestHeaders, body: purchase.body, on: connection, from: source))
                    }
                }
                return await group.reduce(into: [(Int, Exchange)]()) { $0.append($1) }
            }
            var wait = population.think
            var challenge: Answer.Challenge?
            var finished = false
            for (slot, result) in sent {
                connections[slot] = result.connection
                tally.record(result.answer, account: account, micros: result.micros)
                switch result.answer.outcome {
                case .bought:
                    holdsTicket = true
                    finished = true
                    if self.scenario.pay, let order = result.answer.order {
                        await self.pay(order: order, headers: headers, on: &connections[slot], from: source, tally: tally)
                    }
                case .alreadyHolds:
                    holdsTicket = true
                    finished = true
                    // The purchase answered "not confirmed" survived: this user owns it, and pays.
                    if self.scenario.pay, let order = result.answer.order, order == unconfirmedOrder {
                        await self.pay(order: order, headers: headers, on: &connections[slot], from: source, tally: tally)
                    }
                case .unconfirmed:
                    unconfirmedOrder = result.answer.order
                case .soldOut:
                    finished = true
                case .banned where population.stopWhenBanned:
                    finished = true
                case .challenged:
                    challenge = challenge ?? result.answer.challenge
                default:
                    break
                }
                if population.honorRetryAfter, let seconds = result.answer.retryAfter {
                    wait = max(wait, .seconds(seconds))
                }
            }
            if finished || attempt == population.attempts - 1 {
                break attempts
            }
            if let challenge, case .solve(let after, let success) = population.challenges {
                if after > .zero {
                    guard ContinuousClock.now + after < deadline else {
                        break attempts
                    }
                    try? await Task.sleep(for: after)
                }
                if let earned = await self.solve(challenge, success: success, headers: headers, on: &connections[0], from: source, tally: tally) {
                    pass = earned
                    continue attempts
                }
            }
            if wait > .zero {
                if ContinuousClock.now + wait >= deadline {
                    break attempts
                }
                try? await Task.sleep(for: wait)
            }
        }
        for connection in connections {
            await connection?.close()
        }
        slots.release(width)
        tally.userDone(holdsTicket: holdsTicket)
    }

    /// Sends a request on `connection`, (re)connecting from `source` first when it is `nil` or
    /// closed.
    private func send(method: String, path: String, headers: [(String, String)], body: String?, on connection: ReplayConnection?, from source: IPv4) async -> Exchange {
        let timeout = self.scenario.requestTimeout
        let start = ContinuousClock.now
        var open = connection
        do {
            if open?.isOpen != true {
                await open?.close()
                open = try await ReplayConnection.connect(to: self.target, from: source, tls: self.tls, timeout: timeout, group: self.group)
            }
            guard let live = open else {
                throw ReplayError("no connection")
            }
            let response = try await live.request(method: method, path: path, headers: headers, body: body, timeout: timeout)
            let answer = Answer.read(status: response.status, body: response.body, retryAfter: response.retryAfter)
            return Exchange(connection: live, answer: answer, status: response.status, body: response.body, micros: Self.micros(since: start))
        } catch {
            await open?.close()
            return Exchange(connection: nil, answer: Answer(outcome: .error, detail: Self.describe(error)), status: 0, body: "", micros: Self.micros(since: start))
        }
    }

    static func micros(since start: ContinuousClock.Instant) -> UInt64 {
        let elapsed = (ContinuousClock.now - start).components
        return UInt64(max(0, elapsed.seconds)) * 1_000_000 + UInt64(max(0, elapsed.attoseconds) / 1_000_000_000_000)
    }

    /// `text` with its first character read wrong (a person's typo).
    static func misread(_ text: String) -> String {
        guard let first = text.first else {
            return "X"
        }
        let other = CaptchaImage.alphabet.first { $0 != Character(first.uppercased()) } ?? "X"
        return String(other) + text.dropFirst()
    }

    /// A failure in a few words (the report groups errors by it).
    static func describe(_ error: any Error) -> String {
        if let error = error as? ReplayError {
            return error.description
        }
        if let error = error as? NIOConnectionError {
            let first = error.connectionErrors.first.map { "\($0.error)" } ?? "\(error)"
            return "cannot connect: \(first)"
        }
        if let error = error as? IOError {
            return "connection failed: \(error.description)"
        }
        return "\(error)"
    }

    static let paymentTries = 5

    /// Pays `order` (`POST /orders/ID/pay`): the node answers code 1 (paid) or 2 (paid before).
    /// A refusal that says to come back (shed, `Retry-After`) is tried again, five times in all.
    private func pay(order: String, headers: [(String, String)], on connection: inout ReplayConnection?, from source: IPv4, tally: PopulationTally) async {
        var detail = ""
        for attempt in 1...Self.paymentTries {
            let exchange = await self.send(method: "POST", path: "/orders/\(order)/pay", headers: headers, body: "{}", on: connection, from: source)
            connection = exchange.connection
            let code = FlatJSON(exchange.body).integer("code")
            if code == 1 || code == 2 {
                tally.recordPayment(ok: true, detail: nil)
                return
            }
            detail = exchange.answer.detail ?? "\(exchange.answer.outcome.rawValue): \(Answer.excerpt(exchange.body))"
            // Come back later: shed, warming up, or no answer / a 5xx. A final refusal (expired
            // 410, no such order 404, not yours 403) is not tried again.
            let transient = [.shed, .warmupRefused, .unconfirmed, .storeUnavailable, .noBackend].contains(exchange.answer.outcome)
                || (exchange.answer.outcome == .error && (exchange.status == 0 || exchange.status >= 500))
            guard attempt < Self.paymentTries, transient else {
                break
            }
            try? await Task.sleep(for: .seconds(min(exchange.answer.retryAfter ?? 1, 5)))
        }
        tally.recordPayment(ok: false, detail: detail)
    }

    /// Solves `challenge` and asks the gateway for a pass: the proof of work really computed,
    /// an image CAPTCHA read and answered right `success` of the time. The pass, or `nil`.
    private func solve(
        _ challenge: Answer.Challenge,
        success: Double,
        headers: [(String, String)],
        on connection: inout ReplayConnection?,
        from source: IPv4,
        tally: PopulationTally
    ) async -> String? {
        let query: String
        switch challenge.kind {
        case "pow":
            guard let nonce = ProofOfWork.solve(challenge: challenge.id, difficulty: challenge.difficulty) else {
                tally.recordSolution(ok: false, detail: "no proof of work found at difficulty \(challenge.difficulty)")
                return nil
            }
            query = "nonce=\(nonce)"
        case "captcha":
            guard let captchaAnswers = self.captchaAnswers, let image = challenge.image else {
                tally.recordSolution(ok: false, detail: "an image CAPTCHA, and no --captcha-answers to read it with")
                return nil
            }
            // The person looks at the image, then types what they read.
            let fetched = await self.send(method: "GET", path: image, headers: headers, body: nil, on: connection, from: source)
            connection = fetched.connection
            guard fetched.status == 200 else {
                tally.recordSolution(ok: false, detail: "the CAPTCHA image: \(fetched.answer.detail ?? "status \(fetched.status)")")
                return nil
            }
            switch await captchaAnswers.answer(id: challenge.id, timeout: self.scenario.requestTimeout) {
            case .failure(let error):
                tally.recordSolution(ok: false, detail: error.description)
                return nil
            case .success(let text):
                query = "answer=" + (Double.random(in: 0..<1) < success ? text : Self.misread(text))
            }
        default:
            tally.recordSolution(ok: false, detail: "a '\(challenge.kind)' challenge, which the replay cannot solve")
            return nil
        }
        let exchange = await self.send(method: "GET", path: "/.spikegate/verify?id=\(challenge.id)&\(query)", headers: headers, body: nil, on: connection, from: source)
        connection = exchange.connection
        let pass = FlatJSON(exchange.body).string("pass")
        tally.recordSolution(ok: pass != nil, detail: pass == nil ? "verify: \(exchange.status == 0 ? exchange.answer.detail ?? "" : Answer.excerpt(exchange.body))" : nil)
        return pass
    }
}

/// Where a run is: each population's next user to start, and whether every user is done.
final class RunState: Sendable {
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    let next: [Counter]
    let finished = Atomic<Bool>(false)

    init(populations: Int) {
        self.next = (0..<populations).map { _ in Counter() }
    }
}

/// How many connections may be open at once; a user takes all it needs in one go, in arrival
/// order.
final class ConnectionSlots: Sendable {
    private struct State {
        var free: Int
        var waiting: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state: Mutex<State>
    private let maximum: Int

    init(_ maximum: Int) {
        self.maximum = maximum
        self.state = Mutex(State(free: maximum))
    }

    func acquire(_ count: Int) async {
        let count = min(count, self.maximum)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = self.state.withLock { state -> Bool in
                if state.waiting.isEmpty, state.free >= count {
                    state.free -= count
                    return true
                }
                state.waiting.append((count, continuation))
                return false
            }
            if granted {
                continuation.resume()
            }
        }
    }

    func release(_ count: Int) {
        let count = min(count, self.maximum)
        let ready = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.free += count
            var ready: [CheckedContinuation<Void, Never>] = []
            while let first = state.waiting.first, first.count <= state.free {
                state.free -= first.count
                ready.append(first.continuation)
                state.waiting.removeFirst()
            }
            return ready
        }
        ready.forEach { $0.resume() }
    }
}

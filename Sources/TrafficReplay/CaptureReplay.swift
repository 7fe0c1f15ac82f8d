import Foundation
import NIOCore
import NIOSSL
import Synchronization

/// One request of a captured access log (the gateway's `access_log`, JSON lines).
public struct CapturedRequest: Sendable, Hashable {
    /// Milliseconds after the capture's first request.
    public var at: Int64
    public var client: String
    public var account: String?
    public var method: String
    public var target: String
    /// What the gateway decided then (`forwarded`, `challenged`, …).
    public var decision: String
}

/// A captured access log, read.
public struct Capture: Sendable {
    public var requests: [CapturedRequest]
    /// Lines the gateway could not write then (its `{"dropped":N}` lines, added up).
    public var dropped: Int

    /// Reads the access log at `path`; every malformed line is reported (the first 10, with
    /// their line numbers), and nothing is replayed from a file with one.
    public static func load(path: String) throws -> Capture {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ReplayError("cannot read the capture \(path)")
        }
        return try Self.parse(String(decoding: data, as: UTF8.self), file: path)
    }

    /// Reads access-log `text` (`file` names it in errors).
    public static func parse(_ text: String, file: String) throws -> Capture {
        var requests: [CapturedRequest] = []
        var dropped = 0
        var problems: [String] = []
        var first: Int64?
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            let number = index + 1
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                problems.append("\(file):\(number): not a JSON object")
                continue
            }
            if let count = object["dropped"] as? Int {
                dropped += count
                continue
            }
            guard let ts = (object["ts"] as? NSNumber)?.int64Value else {
                problems.append("\(file):\(number): no \"ts\" (milliseconds since the epoch)")
                continue
            }
            guard let client = object["client"] as? String, let method = object["method"] as? String, let target = object["target"] as? String else {
                problems.append("\(file):\(number): a request line needs \"client\", \"method\" and \"target\"")
                continue
            }
            guard !method.isEmpty, method.allSatisfy({ $0.isASCII && $0.isUppercase }), target.hasPrefix("/"), !target.contains(" ") else {
                problems.append("\(file):\(number): '\(method) \(target)' is not a request line to replay")
                continue
            }
            first = min(first ?? ts, ts)
            requests.append(CapturedRequest(
                at: ts, client: client, account: object["account"] as? String, method: method, target: target,
                decision: object["decision"] as? String ?? "unknown"
            ))
        }
        guard problems.isEmpty else {
            let more = problems.count > 10 ? "\n… and \(problems.count - 10) more" : ""
            throw ReplayError("the capture has \(problems.count) malformed line(s):\n" + problems.prefix(10).joined(separator: "\n") + more)
        }
        guard !requests.isEmpty else {
            throw ReplayError("the capture \(file) has no request to replay")
        }
        // Lines are written in batches by several threads: replay in time order, from the first.
        let start = first ?? 0
        for index in requests.indices {
            requests[index].at -= start
        }
        requests.sort { $0.at < $1.at }
        return Capture(requests: requests, dropped: dropped)
    }

    /// The source address each captured client is replayed from: its own when it is a
    /// loopback address, else a distinct address of 127.200.0.0 and up, in order of appearance.
    public func sourceAddresses() -> [String: IPv4] {
        var addresses: [String: IPv4] = [:]
        let pool = AddressRange(first: IPv4(127, 200, 0, 1), count: Int.max)
        var next = 0
        for request in self.requests where addresses[request.client] == nil {
            if let own = IPv4(request.client), own.value >> 24 == 127 {
                addresses[request.client] = own
            } else {
                addresses[request.client] = pool.address(next)
                next += 1
            }
        }
        return addresses
    }
}

/// Replays a capture against a live gateway with its timing (`speed` times faster) and its
/// clients' addresses: each client's requests go over its own keep-alive connections (another
/// one opens when a request is due while the last is still under way). The report groups the
/// requests by what the gateway decided when they were captured.
public final class CaptureReplayer: Sendable {
    private let capture: Capture
    private let target: ReplayTarget
    private let speed: Double
    /// The longest replay accepted, in seconds.
    static let longestReplay: Double = 24 * 3_600
    private let timeout: Duration
    private let purchasePath: String
    private let accountHeader: String
    private let tls: NIOSSLContext?
    private let group: any EventLoopGroup
    private let slots: ConnectionSlots
    /// Idle connections by client.
    private let idle = Mutex<[String: [ReplayConnection]]>([:])

    public init(
        capture: Capture,
        target: ReplayTarget,
        speed: Double = 1,
        maximumConnections: Int = 2_000,
        timeout: Duration = .seconds(10),
        purchasePath: String = "/buy/ticket",
        accountHeader: String = "X-Account-Id",
        insecure: Bool = false,
        caFile: String? = nil,
        group: any EventLoopGroup
    ) throws {
        guard speed > 0 else {
            throw ReplayError("--speed must be above 0")
        }
        // A replay is bounded: a capture that would take more than a day (a bad `ts`, or the
        // wrong unit) is refused before anything is sent.
        let first = capture.requests.map(\.at).min() ?? 0
        let last = capture.requests.map(\.at).max() ?? 0
        let seconds = Double(last - first) / 1e6 / speed
        guard seconds <= Self.longestReplay else {
            throw ReplayError(
                "the capture spans \(String(format: "%.0f", Double(last - first) / 1e6)) s between its first and last request: "
                    + "more than \(Int(Self.longestReplay / 3_600)) h at \(speed)× speed (ts must be microseconds; raise --speed to replay it faster)"
            )
        }
        self.capture = capture
        self.target = target
        self.speed = speed
        self.timeout = timeout
        self.purchasePath = purchasePath
        self.accountHeader = accountHeader
        self.tls = try Replayer.tlsContext(for: target, caFile: caFile, insecure: insecure)
        self.group = group
        self.slots = ConnectionSlots(maximumConnections)
    }

    public func run(progress: (@Sendable (String) -> Void)? = nil) async -> ReplayReport {
        let addresses = self.capture.sourceAddresses()
        let decisions = Array(Set(self.capture.requests.map(\.decision))).sorted()
        var tallies: [String: PopulationTally] = [:]
        for decision in decisions {
            let clients = Set(self.capture.requests.filter { $0.decision == decision }.map(\.client)).count
            tallies[decision] = PopulationTally(population: Population(name: "was-\(decision)", users: clients))
        }
        let start = ContinuousClock.now
        let done = RunState.Counter()
        let total = self.capture.requests.count
        await withTaskGroup(of: Void.self) { group in
            if let progress {
                group.addTask {
                    while done.value.load(ordering: .relaxed) < total {
                        try? await Task.sleep(for: .seconds(1))
                        progress(String(format: "%6.1fs", (ContinuousClock.now - start).seconds) + "  requests \(ReplayReport.number(done.value.load(ordering: .relaxed)))/\(ReplayReport.number(total))")
                    }
                }
            }
            await withTaskGroup(of: Void.self) { requests in
                for request in self.capture.requests {
                    let due = start + .nanoseconds(Int64(Double(request.at) / self.speed * 1e6))
                    if due > ContinuousClock.now {
                        try? await Task.sleep(until: due, clock: .continuous)
                    }
                    await self.slots.acquire(1)
                    let tally = tallies[request.decision]!
                    let source = addresses[request.client]!
                    requests.addTask {
                        await self.send(request, from: source, tally: tally)
                        self.slots.release(1)
                        done.value.add(1, ordering: .relaxed)
                    }
                }
            }
            group.cancelAll()
        }
        let connections = self.idle.withLock { idle in
            defer { idle.removeAll() }
            return idle.values.flatMap { $0 }
        }
        for connection in connections {
            await connection.close()
        }
        let elapsed = ContinuousClock.now - start
        let populations = decisions.map { tallies[$0]!.summary() }
        let requests = populations.reduce(0) { $0 + $1.requests }
        return ReplayReport(
            scenario: "capture of \(total) requests at \(self.speed)× speed" + (self.capture.dropped > 0 ? " (\(self.capture.dropped) lines dropped when captured)" : ""),
            target: self.target.description,
            seconds: (elapsed.seconds * 100).rounded() / 100,
            requests: requests,
            requestsPerSecond: elapsed.seconds > 0 ? (Double(requests) / elapsed.seconds).rounded() : 0,
            usersCutShort: 0,
            populations: populations,
            sale: nil
        )
    }

    private func send(_ request: CapturedRequest, from source: IPv4, tally: PopulationTally) async {
        var connection = self.idle.withLock { $0[request.client]?.popLast() }
        let started = ContinuousClock.now
        var answer: Answer
        do {
            if connection?.isOpen != true {
                connection = try await ReplayConnection.connect(to: self.target, from: source, tls: self.tls, timeout: self.timeout, group: self.group)
            }
            guard let live = connection else {
                throw ReplayError("no connection")
            }
            let headers = request.account.map { [(self.accountHeader, $0)] } ?? []
            let response = try await live.request(method: request.method, path: request.target, headers: headers, body: nil, timeout: self.timeout)
            answer = Answer.read(status: response.status, body: response.body, retryAfter: response.retryAfter)
            let path = request.target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.target
            if path != self.purchasePath, [.bought, .error, .challenged].contains(answer.outcome), response.status < 500 {
                // Not a purchase (a page, a payment, a challenge's image or solution): answered,
                // whatever it said — a captured challenge id or order means nothing to a fresh sale.
                answer = Answer(outcome: .answered)
            }
            self.idle.withLock { $0[request.client, default: []].append(live) }
        } catch {
            await connection?.close()
            answer = Answer(outcome: .error, detail: Replayer.describe(error))
        }
        tally.record(answer, account: request.account, micros: Replayer.micros(since: started))
    }
}



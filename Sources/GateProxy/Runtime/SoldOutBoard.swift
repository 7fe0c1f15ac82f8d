import GateCore
import GateRules
import NIOCore
import NIOHTTP1
import Synchronization

/// The sold-out latches of the routes with `sold_out:`, shared by every event loop (a route
/// latched by one loop's answer is latched for all), keyed by route id so a rules reload keeps
/// them.
///
/// While no route is latched, `decide` reads one atomic and takes no lock.
final class SoldOutBoard: Sendable {
    enum Decision {
        case forward
        /// Forward as the request that asks the backends again.
        case probe
        case soldOut(Answer)
    }

    /// An answer held by reference: handing it out per request costs one retain, not one per
    /// string and buffer inside it.
    final class Answer: Sendable {
        let answer: LocalAnswer

        init(_ answer: LocalAnswer) {
            self.answer = answer
        }
    }

    private struct Entry {
        var latch: SoldOutLatch
        /// What is answered while latched: the backend's own sold-out answer, as it gave it.
        var answer: Answer
        /// While open: the backends whose last answer was "sold out". The route latches when
        /// this covers every backend serving it.
        var soldOutBackends: Set<Endpoint> = []
    }

    /// The answer while latched when no backend answer was seen (the stock in Redis said so).
    static let defaultAnswer = Answer(LocalAnswer(status: .ok, code: LocalAnswer.Code.soldOut, reason: "sold out").prebuilt())

    private let entries = Mutex<[String: Entry]>([:])
    private let latchedCount = Atomic(0)
    /// Open routes with a backend that said "sold out": zero lets other answers skip the lock.
    private let doubtedCount = Atomic(0)

    /// What to do with a request on `route` at `now`. `probes`: whether a latched route lets
    /// one request through every recheck (not when the stock in Redis is read instead).
    func decide(route: String, probes: Bool, now: MonotonicInstant) -> Decision {
        guard self.latchedCount.load(ordering: .relaxed) > 0 else {
            return .forward
        }
        return self.entries.withLock { entries -> Decision in
            guard let index = entries.index(forKey: route) else {
                return .forward
            }
            // In place: a copy of the entry out and back would cost a hash and its retains.
            switch entries.values[index].latch.decide(now: now) {
            case .forward:
                return .forward
            case .probe:
                return probes ? .probe : .soldOut(entries.values[index].answer)
            case .soldOut:
                return .soldOut(entries.values[index].answer)
            }
        }
    }

    /// Backend `backend` answered "sold out" on `route`, which `serving` backends serve. One
    /// backend's "sold out" may only mean its own share is used up (a ticket node answers so from
    /// memory until it sees the global stock again) while the others still sell: the route
    /// latches once every serving backend's last answer was "sold out".
    func sawSoldOut(route: String, backend: Endpoint, serving: Int, recheck: Duration, answer: LocalAnswer?, now: MonotonicInstant) {
        let everyBackend = self.entries.withLock { entries -> Bool in
            var entry = entries[route] ?? Entry(latch: SoldOutLatch(recheck: recheck), answer: Self.defaultAnswer)
            guard entry.latch.state == .open else {
                return false
            }
            if entry.soldOutBackends.isEmpty {
                self.doubtedCount.add(1, ordering: .relaxed)
            }
            entry.soldOutBackends.insert(backend)
            let all = entry.soldOutBackends.count >= max(1, serving)
            entries[route] = entry
            return all
        }
        if everyBackend {
            self.latch(route: route, recheck: recheck, answer: answer, now: now)
        }
    }

    /// Backend `backend` answered something other than "sold out" on `route`: it sells.
    func sawAvailable(route: String, backend: Endpoint) {
        guard self.doubtedCount.load(ordering: .relaxed) > 0 else {
            return
        }
        self.entries.withLock { entries in
            guard var entry = entries[route], entry.soldOutBackends.remove(backend) != nil else {
                return
            }
            if entry.soldOutBackends.isEmpty {
                self.doubtedCount.subtract(1, ordering: .relaxed)
            }
            entries[route] = entry
        }
    }

    /// A backend (or the stock) said `route` is sold out at `now`; `answer` is what to repeat.
    func latch(route: String, recheck: Duration, answer: LocalAnswer?, now: MonotonicInstant) {
        let newlyLatched = self.entries.withLock { entries -> Bool in
            var entry = entries[route] ?? Entry(latch: SoldOutLatch(recheck: recheck), answer: Self.defaultAnswer)
            let wasOpen = entry.latch.state == .open
            entry.latch.observedSoldOut(now: now)
            if !entry.soldOutBackends.isEmpty {
                entry.soldOutBackends.removeAll()
                self.doubtedCount.subtract(1, ordering: .relaxed)
            }
            if let answer {
                entry.answer = Answer(answer)
            }
            entries[route] = entry
            return wasOpen
        }
        if newlyLatched {
            self.latchedCount.add(1, ordering: .relaxed)
        }
    }

    /// The probe `decide` handed out on `route` never reached a backend: the next request
    /// may probe.
    func probeUnused(route: String, now: MonotonicInstant) {
        self.entries.withLock { entries in
            entries[route]?.latch.probeUnused(now: now)
        }
    }

    /// Tickets are there again on `route`: requests are forwarded.
    func open(route: String) {
        let wasLatched = self.entries.withLock { entries -> Bool in
            guard var entry = entries[route], entry.latch.state != .open else {
                return false
            }
            entry.latch.observedAvailable()
            entries[route] = entry
            return true
        }
        if wasLatched {
            self.latchedCount.subtract(1, ordering: .relaxed)
        }
    }

    /// Whether `route` is latched now, and how many requests it answered locally since.
    func state(route: String) -> (latched: Bool, answered: Int) {
        self.entries.withLock { entries in
            guard let entry = entries[route] else {
                return (false, 0)
            }
            return (entry.latch.state != .open, entry.latch.answeredLocally)
        }
    }

    /// Routes latched now.
    var latchedRoutes: Int {
        self.latchedCount.load(ordering: .relaxed)
    }

    /// Whether an answer says "sold out" under `policy`: it carries the policy's header, or its
    /// JSON body (`body`, when collected) has the policy's top-level `code`.
    static func saysSoldOut(policy: SoldOutPolicy, hasHeader: Bool, body: [UInt8]?) -> Bool {
        if hasHeader {
            return true
        }
        guard let code = policy.jsonCode, let body, let members = try? JSONObjectReader.members(of: body),
              case .number(let value)? = members["code"]
        else {
            return false
        }
        return value == Double(code)
    }
}

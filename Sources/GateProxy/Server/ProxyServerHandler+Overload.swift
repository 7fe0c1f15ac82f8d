import GateCore
import GateRedis
import GateRules
import NIOCore
import NIOHTTP1

/// The overload phases of a request: the warm-up gate, the sold-out latch and the answers the
/// admission control refuses with. (The admission itself lives with the exchange in
/// `ProxyServerHandler.swift`: its slot is given back when the exchange ends.)
extension ProxyServerHandler {
    /// The refusal of a request the upstream has no room for: 503, `Retry-After`, code -5, and
    /// which limit shed it (`shed`: `queue_full`, `deadline` or `queue_timeout`).
    static let shedAnswers: [AdmissionQueue<UInt64>.Refusal: LocalAnswer] = Dictionary(
        uniqueKeysWithValues: AdmissionQueue<UInt64>.Refusal.allCases.map { reason in
            (reason, LocalAnswer(
                status: .serviceUnavailable,
                code: LocalAnswer.Code.overloaded,
                reason: "overloaded",
                members: "\"shed\":\"\(reason.rawValue)\"",
                headers: [("Retry-After", "1")]
            ).prebuilt())
        }
    )

    /// The refusal while the gateway warms up: 503, `Retry-After`, code -5, and what it waits
    /// for (or the share of requests the ramp lets through).
    func warmupAnswer(now: MonotonicInstant) -> LocalAnswer {
        let status = self.settings.warmup.status(now: now)
        let why = status.waitingFor ?? "ramping up: \(Int((status.share * 100).rounded()))% of requests let through"
        return LocalAnswer(
            status: .serviceUnavailable,
            code: LocalAnswer.Code.overloaded,
            reason: "warming up",
            members: "\"warmup\":{\"phase\":\"\(status.phase.rawValue)\",\"detail\":\(jsonString(why))}",
            headers: [("Retry-After", "1")]
        )
    }

    /// Whether an upstream answer says the sale is over: looked at once its body is in.
    struct SoldOutWatch {
        let policy: SoldOutPolicy
        let route: String
        /// The request was let through a latched route to ask again.
        let probe: Bool
        var status = 200
        var contentType = "application/json"
        var hasHeader = false
        /// The answer's body, while it fits `maximumBody` (`nil` beyond).
        var body: [UInt8]? = []

        static let maximumBody = 4096

        init(policy: SoldOutPolicy, route: String, probe: Bool) {
            self.policy = policy
            self.route = route
            self.probe = probe
        }

        mutating func head(_ head: HTTP1ResponseHead, bytes: ByteBuffer) {
            self.status = head.status
            if case .contentLength(let length) = head.framing, length > Self.maximumBody {
                self.body = nil
            }
            bytes.withUnsafeReadableBytes { raw in
                for field in head.forwarded {
                    let name = raw[field.name]
                    if let header = self.policy.headerLowercased, name.equalsASCIICaseInsensitive(header) {
                        self.hasHeader = true
                    } else if name.equalsASCIICaseInsensitive("content-type") {
                        self.contentType = String(decoding: raw[field.value], as: UTF8.self)
                    }
                }
            }
        }

        mutating func body(_ data: ByteBuffer) {
            guard self.body != nil else {
                return
            }
            if self.body!.count + data.readableBytes > Self.maximumBody {
                self.body = nil
            } else {
                self.body!.append(contentsOf: data.readableBytesView)
            }
        }
    }

    /// The answer of a watched route ended: latch it once every serving backend has said
    /// "sold out" (repeating that answer from now on; a probe's "sold out" keeps it latched),
    /// open it when a probe found tickets.
    func settle(_ watch: SoldOutWatch, backend: BackendKey?, serving: @autoclosure () -> Int) {
        let board = self.settings.soldOut
        if SoldOutBoard.saysSoldOut(policy: watch.policy, hasHeader: watch.hasHeader, body: watch.body) {
            let answer = watch.body.map {
                LocalAnswer(status: HTTPResponseStatus(statusCode: watch.status), contentType: watch.contentType, body: $0).prebuilt()
            }
            if let backend {
                board.sawSoldOut(
                    route: watch.route, backend: backend.endpoint, serving: serving(),
                    recheck: watch.policy.recheck, answer: answer, now: .now()
                )
            } else {
                board.latch(route: watch.route, recheck: watch.policy.recheck, answer: answer, now: .now())
            }
        } else if watch.status < 500 {
            if let backend {
                board.sawAvailable(route: watch.route, backend: backend.endpoint)
            }
            if watch.probe {
                board.open(route: watch.route)
            }
        }
    }
}

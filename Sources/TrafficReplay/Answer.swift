/// What an answer to a purchase attempt meant, from the gateway's and the ticket node's JSON
/// `code` (both answer small flat JSON objects) and the status.
public enum Outcome: String, Sendable, Hashable, CaseIterable, Codable {
    /// The ticket node reserved a ticket (`code` 1).
    case bought
    /// The account holds a ticket already (node `code` -2).
    case alreadyHolds = "already_holds"
    /// No ticket left: the node's `code` -1, or the gateway's sold-out latch (`code` -12).
    case soldOut = "sold_out"
    /// A challenge to solve (`code` -3).
    case challenged
    /// Banned (`code` -9).
    case banned
    /// Another request of the account is under way (`code` -4).
    case inFlightRefused = "in_flight_refused"
    /// Over a window's limit (`code` -10).
    case rateLimited = "rate_limited"
    /// Shed by the overload admission (`code` -5, `"shed"`).
    case shed
    /// Refused while the gateway warms up (`code` -5, `"warmup"`).
    case warmupRefused = "warmup_refused"
    /// Refused by a deny list (`code` -11).
    case denied
    /// The ticket node reserved, but too few replicas acknowledged it in time (node `code` -13,
    /// 503): asked again later, it holds the ticket or buys anew.
    case unconfirmed
    /// The ticket node could not reach its stock store (node `code` -5, 503, "stock store
    /// unavailable"), or the gateway its shared state (`code` -8, 503, with `on_store_error:
    /// closed`): Redis down or failing over.
    case storeUnavailable = "store_unavailable"
    /// The gateway had no healthy backend to send it to (`code` -7, 503 "no backend … is
    /// available"): every ticket node failing its health checks, as when their Redis is down.
    case noBackend = "no_backend"
    /// An answer below 500 to a replayed request that is not a purchase (capture replay): a
    /// page, a payment, a challenge's image or solution.
    case answered
    /// Anything else: a failed connection, a timeout, a status or code nobody explained.
    case error
}

/// One answer, read.
public struct Answer: Sendable, Hashable {
    public var outcome: Outcome
    /// The order reserved (bought) or held (already holds).
    public var order: String?
    /// The challenge to solve (challenged).
    public var challenge: Challenge?
    /// The answer's `Retry-After`, in seconds.
    public var retryAfter: Int?
    /// For errors: what was wrong.
    public var detail: String?

    /// A challenge as the gateway describes it.
    public struct Challenge: Sendable, Hashable {
        public var id: String
        /// `pow` or `captcha`.
        public var kind: String
        /// Leading zero bits asked for (proof of work).
        public var difficulty: Int
        /// Where the image is (CAPTCHA).
        public var image: String?
    }

    /// Reads an answer with `status`, `body` and `Retry-After` value.
    public static func read(status: Int, body: String, retryAfter: String? = nil) -> Answer {
        let json = FlatJSON(body)
        let code = json.integer("code")
        var answer = Answer(outcome: .error, retryAfter: retryAfter.flatMap { Int($0) })
        switch (status, code ?? 0) {
        case (200, 1):
            answer.outcome = .bought
            answer.order = json.string("order")
        case (200, -2):
            answer.outcome = .alreadyHolds
            answer.order = json.string("order")
        case (200, -1), (_, -12):
            answer.outcome = .soldOut
        case (429, -3), (403, -3):
            guard let id = json.string("id") else {
                answer.detail = "a challenge without an id: \(Self.excerpt(body))"
                return answer
            }
            answer.outcome = .challenged
            answer.challenge = Challenge(id: id, kind: json.string("kind") ?? "pow", difficulty: json.integer("difficulty") ?? 0, image: json.string("image"))
        case (_, -9):
            answer.outcome = .banned
        case (429, -4):
            answer.outcome = .inFlightRefused
        case (429, -10):
            answer.outcome = .rateLimited
        case (503, -5) where json.string("reason") == "overloaded":
            answer.outcome = .shed
        case (503, -5) where json.string("reason") == "warming up":
            answer.outcome = .warmupRefused
        case (_, -11):
            answer.outcome = .denied
        case (503, -13):
            answer.outcome = .unconfirmed
            answer.order = json.string("order")
        case (503, -8) where json.string("reason") == "the shared state store is unavailable":
            // The gateway's own Redis failed a check whose rule says `on_store_error: closed`.
            answer.outcome = .storeUnavailable
        case (503, -5) where json.string("msg")?.hasPrefix("stock store unavailable") == true:
            answer.outcome = .storeUnavailable
        case (503, -7) where json.string("reason")?.hasPrefix("no backend of upstream") == true:
            answer.outcome = .noBackend
        default:
            answer.detail = "status \(status)\(code.map { ", code \($0)" } ?? ""): \(Self.excerpt(body))"
        }
        return answer
    }

    /// The start of `body`, for an error's detail.
    static func excerpt(_ body: String) -> String {
        body.isEmpty ? "(empty body)" : String(body.prefix(120))
    }
}

/// Looks values up in a small flat JSON object by key (the first occurrence, nested objects
/// included) without building a dictionary: numbers and strings without escapes, which is what
/// the gateway and the ticket node write.
struct FlatJSON {
    private let bytes: [UInt8]

    init(_ text: String) {
        self.bytes = Array(text.utf8)
    }

    /// Where the value of `key` starts, after `"key":` and blanks.
    private func valueStart(_ key: String) -> Int? {
        let needle = Array("\"\(key)\"".utf8)
        guard self.bytes.count >= needle.count else {
            return nil
        }
        var index = 0
        while index <= self.bytes.count - needle.count {
            if self.bytes[index] == needle[0], Array(self.bytes[index..<index + needle.count]) == needle {
                var at = index + needle.count
                while at < self.bytes.count, self.bytes[at] == UInt8(ascii: " ") {
                    at += 1
                }
                if at < self.bytes.count, self.bytes[at] == UInt8(ascii: ":") {
                    at += 1
                    while at < self.bytes.count, self.bytes[at] == UInt8(ascii: " ") {
                        at += 1
                    }
                    return at
                }
            }
            index += 1
        }
        return nil
    }

    func integer(_ key: String) -> Int? {
        guard var at = self.valueStart(key) else {
            return nil
        }
        let start = at
        if at < self.bytes.count, self.bytes[at] == UInt8(ascii: "-") {
            at += 1
        }
        while at < self.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[at]) {
            at += 1
        }
        return Int(String(decoding: self.bytes[start..<at], as: UTF8.self))
    }

    func string(_ key: String) -> String? {
        guard let at = self.valueStart(key), at < self.bytes.count, self.bytes[at] == UInt8(ascii: "\"") else {
            return nil
        }
        var end = at + 1
        while end < self.bytes.count, self.bytes[end] != UInt8(ascii: "\"") {
            if self.bytes[end] == UInt8(ascii: "\\") {
                return nil
            }
            end += 1
        }
        guard end < self.bytes.count else {
            return nil
        }
        return String(decoding: self.bytes[(at + 1)..<end], as: UTF8.self)
    }
}

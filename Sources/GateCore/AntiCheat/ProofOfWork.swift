import Crypto

/// The proof-of-work challenge: find a `nonce` such that SHA-256 of `CHALLENGE:NONCE` starts
/// with `difficulty` zero bits. Each extra bit doubles the expected work (about 2^difficulty
/// hashes): 16 bits cost a browser a fraction of a second, a bot farm real CPU per request.
public enum ProofOfWork {
    /// The most difficulty a rule may ask (2^28 hashes is already minutes in a browser).
    public static let maximumDifficulty = 28

    /// Whether `nonce` solves `challenge` at `difficulty`. Nonces are at most 64 bytes.
    public static func verify(challenge: String, nonce: String, difficulty: Int) -> Bool {
        guard !nonce.isEmpty, nonce.utf8.count <= 64 else {
            return false
        }
        return Self.leadingZeroBits(of: challenge + ":" + nonce) >= difficulty
    }

    /// A solution, searching nonces 0, 1, 2, … (what a client does; tests and the replay tool
    /// use it). `nil` if none within `attempts`.
    public static func solve(challenge: String, difficulty: Int, attempts: Int = 1 << 26) -> String? {
        for candidate in 0..<attempts {
            let nonce = String(candidate, radix: 36)
            if Self.leadingZeroBits(of: challenge + ":" + nonce) >= difficulty {
                return nonce
            }
        }
        return nil
    }

    /// Leading zero bits of SHA-256(`text`).
    static func leadingZeroBits(of text: String) -> Int {
        var bits = 0
        for byte in SHA256.hash(data: Array(text.utf8)) {
            if byte == 0 {
                bits += 8
                continue
            }
            bits += byte.leadingZeroBitCount
            break
        }
        return bits
    }
}

/// Challenges handed out and not yet solved: single use, each with an expiry, bound to the
/// client address and the route it was issued for. Pure; the caller serialises access and
/// passes the time in.
public struct ChallengeBook: Sendable {
    public struct Challenge: Sendable, Hashable {
        public let id: String
        /// Proof-of-work: the leading zero bits asked for (ignored for an image CAPTCHA).
        public let difficulty: Int
        /// Image CAPTCHA: the characters shown (`nil` for proof-of-work).
        public let answer: String?
        /// Image CAPTCHA: how the image is distorted (it is drawn again from this when asked for).
        public let seed: UInt64
        public let client: String
        public let route: String
        public let expires: MonotonicInstant
        /// The rule that asked for it (its pass settings apply).
        public let rule: String

        public init(
            id: String, difficulty: Int, client: String, route: String, expires: MonotonicInstant, rule: String = "",
            answer: String? = nil, seed: UInt64 = 0
        ) {
            self.id = id
            self.rule = rule
            self.difficulty = difficulty
            self.answer = answer
            self.seed = seed
            self.client = client
            self.route = route
            self.expires = expires
        }
    }

    /// Why a solution was refused.
    public enum Refusal: String, Error, Sendable, Hashable {
        /// Unknown id: never issued, already used (single use), or expired and swept.
        case unknown = "unknown or already used challenge"
        case expired = "challenge expired"
        case otherClient = "challenge issued to another client"
        case wrongSolution = "wrong solution"
    }

    private var open: [String: Challenge] = [:]
    public let capacity: Int

    public init(capacity: Int = 500_000) {
        self.capacity = max(1, capacity)
    }

    public var count: Int {
        self.open.count
    }

    /// Records `challenge`; `false` when the book is full of live challenges.
    public mutating func issue(_ challenge: Challenge, now: MonotonicInstant) -> Bool {
        if self.open.count >= self.capacity {
            self.sweep(now: now)
            guard self.open.count < self.capacity else {
                return false
            }
        }
        self.open[challenge.id] = challenge
        return true
    }

    /// The open challenge `id` of `client`, without using it up (to draw its image again).
    public func peek(id: String, client: String, now: MonotonicInstant) -> Challenge? {
        guard let challenge = self.open[id], challenge.expires > now, challenge.client == client else {
            return nil
        }
        return challenge
    }

    /// The characters of the open image CAPTCHA `id` (whoever it was issued to), for a load
    /// test's simulated people; `nil` for an unknown, expired or proof-of-work challenge.
    public func answer(id: String, now: MonotonicInstant) -> String? {
        guard let challenge = self.open[id], challenge.expires > now else {
            return nil
        }
        return challenge.answer
    }

    /// Checks a solution: a proof-of-work nonce, or the characters of an image CAPTCHA (any
    /// case). The challenge is used up by any attempt on it, right or wrong (a wrong nonce does
    /// not get a second try at the same work, a wrong guess not a second guess at one image).
    public mutating func redeem(id: String, nonce: String, client: String, now: MonotonicInstant) -> Result<Challenge, Refusal> {
        guard let challenge = self.open.removeValue(forKey: id) else {
            return .failure(.unknown)
        }
        guard challenge.expires > now else {
            return .failure(.expired)
        }
        guard challenge.client == client else {
            return .failure(.otherClient)
        }
        if let answer = challenge.answer {
            let guess = Array(nonce.uppercased().utf8)
            let expected = Array(answer.utf8)
            // Compared without an early exit, so timing does not tell how many characters fit.
            guard guess.count == expected.count, zip(guess, expected).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0 else {
                return .failure(.wrongSolution)
            }
        } else if !ProofOfWork.verify(challenge: id, nonce: nonce, difficulty: challenge.difficulty) {
            return .failure(.wrongSolution)
        }
        return .success(challenge)
    }

    /// Drops expired challenges; returns how many.
    @discardableResult
    public mutating func sweep(now: MonotonicInstant) -> Int {
        let before = self.open.count
        self.open = self.open.filter { $0.value.expires > now }
        return before - self.open.count
    }
}

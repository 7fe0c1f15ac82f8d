/// Back-pressure on one channel: while any reason to pause holds, a `read` asked for by NIO is
/// held back, and issued when the last reason is gone (so the socket is not read while the
/// other side is full, or while pipelined requests wait their turn).
struct HeldReads {
    /// Why reading is paused.
    struct Reason: OptionSet {
        let rawValue: UInt8

        /// The other side of the proxy cannot take more bytes now.
        static let backPressure = Reason(rawValue: 1)
        /// Pipelined requests are queued behind the exchange under way.
        static let pipelined = Reason(rawValue: 2)
    }

    private var reasons: Reason = []
    private var pending = false

    /// Whether a `read` asked for now may go ahead; if not it is remembered.
    mutating func allowsRead() -> Bool {
        if !self.reasons.isEmpty {
            self.pending = true
            return false
        }
        return true
    }

    mutating func pause(_ reason: Reason = .backPressure) {
        self.reasons.insert(reason)
    }

    /// Lifts `reason`; `true` when a held `read` must be issued now.
    mutating func resume(_ reason: Reason = .backPressure) -> Bool {
        guard self.reasons.contains(reason) else {
            return false
        }
        self.reasons.remove(reason)
        guard self.reasons.isEmpty, self.pending else {
            return false
        }
        self.pending = false
        return true
    }
}

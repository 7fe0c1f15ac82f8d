/// Back-pressure on one channel: while paused, a `read` asked for by NIO is held back and
/// issued when reading resumes (so the socket is not read while the other side is full).
struct HeldReads {
    private var paused = false
    private var pending = false

    /// Whether a `read` asked for now may go ahead; if not it is remembered.
    mutating func allowsRead() -> Bool {
        if self.paused {
            self.pending = true
            return false
        }
        return true
    }

    mutating func pause() {
        self.paused = true
    }

    /// Resumes; `true` when a held `read` must be issued now.
    mutating func resume() -> Bool {
        guard self.paused else {
            return false
        }
        self.paused = false
        defer { self.pending = false }
        return self.pending
    }
}

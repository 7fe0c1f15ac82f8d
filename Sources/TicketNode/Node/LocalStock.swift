import Synchronization

/// A node's local share of the stock: the cheap first gate before any Redis trip.
///
/// The source design deducts a local counter first and the global Redis stock second; its
/// counter was a plain integer raced by every request. Here it is an atomic compare-and-swap, the
/// cheapest primitive that is correct across event-loop threads. The share is only a filter —
/// Redis's script decides every sale — so the limit may move while requests are in flight.
///
/// - `limit` starts at share × (1 + buffer): the buffer lets live nodes take over part of a
///   dead node's share without waiting.
/// - Once the limit is reached, or Redis answered "sold out", the node answers sold-out from
///   memory. `refresh(remaining:)`, fed by a periodic look at the global stock, reopens it when
///   tickets are left (expired reservations, a dead node's share), so the sale never undersells.
public final class LocalStock: Sendable {
    /// The node's configured share.
    public let share: Int
    private let limit: Atomic<Int>
    private let taken: Atomic<Int>
    private let soldOut: Atomic<Bool>

    /// A share of `share` tickets with `buffer` (0.2 = 20 %) on top.
    public init(share: Int, buffer: Double) {
        self.share = max(0, share)
        let limit = (Double(self.share) * (1 + max(0, buffer))).rounded(.up)
        self.limit = Atomic(Int(limit))
        self.taken = Atomic(0)
        self.soldOut = Atomic(false)
    }

    /// Takes one ticket of the local share; `false` means "sold out here" (no Redis trip).
    public func tryTake() -> Bool {
        if self.soldOut.load(ordering: .relaxed) {
            return false
        }
        var current = self.taken.load(ordering: .relaxed)
        while current < self.limit.load(ordering: .relaxed) {
            let (exchanged, original) = self.taken.compareExchange(
                expected: current,
                desired: current + 1,
                ordering: .relaxed
            )
            if exchanged {
                return true
            }
            current = original
        }
        return false
    }

    /// Returns a taken ticket that Redis did not sell (sold out, a duplicate, an error).
    public func giveBack() {
        self.taken.subtract(1, ordering: .relaxed)
    }

    /// Redis said the sale is sold out: answer from memory until a refresh says otherwise.
    public func latchSoldOut() {
        self.soldOut.store(true, ordering: .relaxed)
    }

    /// Whether the node answers sold-out from memory right now (and so wants a refresh).
    public var isClosed: Bool {
        self.soldOut.load(ordering: .relaxed) || self.taken.load(ordering: .relaxed) >= self.limit.load(ordering: .relaxed)
    }

    /// Reopens the node when the global stock has `remaining` tickets: an exhausted share grows
    /// by `remaining` more attempts to Redis. With nothing remaining it stays (or becomes) closed.
    public func refresh(remaining: Int) {
        guard remaining > 0 else {
            self.soldOut.store(true, ordering: .relaxed)
            return
        }
        let taken = self.taken.load(ordering: .relaxed)
        if taken >= self.limit.load(ordering: .relaxed) {
            self.limit.store(taken + remaining, ordering: .relaxed)
        }
        self.soldOut.store(false, ordering: .relaxed)
    }

    /// The share's counters, for `GET /stock` and the stat log.
    public var snapshot: (share: Int, limit: Int, taken: Int, soldOut: Bool) {
        (self.share, self.limit.load(ordering: .relaxed), self.taken.load(ordering: .relaxed), self.soldOut.load(ordering: .relaxed))
    }
}

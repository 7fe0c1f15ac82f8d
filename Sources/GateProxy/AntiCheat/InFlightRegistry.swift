import GateCore
import GateRedis
import Synchronization

/// The gateway's in-process in-flight flags (`InFlightFlags`), shared by every event loop.
///
/// One lock around a dictionary: taken twice per flagged request (acquire, release), never held
/// across I/O. Lapsed flags are swept by the acquire that finds the table full, and by
/// `sweep`, which the gateway calls now and then.
final class InFlightRegistry: Sendable {
    /// A flag this gateway took: the account and the token that owns it.
    struct Hold: Sendable {
        let account: String
        let token: UInt64
    }

    private let flags: Mutex<InFlightFlags>
    private let tokens = Atomic<UInt64>(0)

    init(capacity: Int = 1_000_000) {
        self.flags = Mutex(InFlightFlags(capacity: capacity))
    }

    /// Takes the flag of `account` for `ttl`; `nil` when another request holds it.
    func acquire(_ account: String, ttl: Duration, now: MonotonicInstant = .now()) -> Hold? {
        let token = self.tokens.wrappingAdd(1, ordering: .relaxed).newValue
        let result = self.flags.withLock { $0.acquire(account, token: token, ttl: ttl, now: now) }
        guard case .acquired = result else {
            return nil
        }
        return Hold(account: account, token: token)
    }

    /// Gives a flag back (only if it is still ours).
    func release(_ hold: Hold) {
        self.flags.withLock { _ = $0.release(hold.account, token: hold.token) }
    }

    /// Flags held now.
    var count: Int {
        self.flags.withLock { $0.count }
    }

    /// Drops lapsed flags; returns how many.
    @discardableResult
    func sweep(now: MonotonicInstant = .now()) -> Int {
        self.flags.withLock { $0.sweep(now: now) }
    }
}

import GateChannels
import GateCore
import NIOCore
import Synchronization

/// A sale kept in this process's memory (`SaleLedger` behind a lock): what the demo runs on
/// when no `redis-server` is installed. Every ticket node sharing the sale must run in this
/// process; nothing survives the process. Time is the wall clock, in milliseconds, as Redis's
/// `TIME` is for `SaleStore`.
public final class MemorySaleStore: TicketStore {
    public let sale: String
    private let ledger: Mutex<SaleLedger>
    /// Completes futures when the caller names no event loop.
    private let group: any EventLoopGroup
    private let clock: @Sendable () -> Int64

    /// A sale `sale` of `tickets` tickets whose reservations last `payTimeout`; `group` runs
    /// the futures of callers that give no event loop; `clock` gives the time in milliseconds.
    public init(
        sale: String,
        tickets: Int,
        payTimeout: Duration,
        group: any EventLoopGroup,
        clock: @escaping @Sendable () -> Int64 = WallClock.milliseconds
    ) throws(SaleError) {
        let keys = try SaleKeys(sale: sale)
        guard tickets > 0 else {
            throw SaleError(code: .invalidSale, message: "a sale needs at least one ticket, not \(tickets)")
        }
        let milliseconds = payTimeout.nanosecondsClamped / 1_000_000
        guard milliseconds > 0 else {
            throw SaleError(code: .invalidSale, message: "the pay timeout must be positive")
        }
        self.sale = keys.sale
        self.ledger = Mutex(SaleLedger(tickets: tickets, payTimeoutMilliseconds: milliseconds))
        self.group = group
        self.clock = clock
    }

    /// The ledger as it is now (for the demo's audit and tests).
    public var snapshot: SaleLedger {
        self.ledger.withLock { $0 }
    }

    private func answer<Value: Sendable>(on eventLoop: (any EventLoop)?, _ body: (inout SaleLedger, Int64) -> Value) -> EventLoopFuture<Value> {
        // The time is read under the lock, as Redis reads it inside the script.
        let value = self.ledger.withLock { body(&$0, self.clock()) }
        return (eventLoop ?? self.group.next()).makeSucceededFuture(value)
    }

    public func status(on eventLoop: (any EventLoop)?) -> EventLoopFuture<SaleStatus> {
        self.answer(on: eventLoop) { ledger, _ in ledger.status }
    }

    public func buy(account: String, node: String, on eventLoop: (any EventLoop)?) -> EventLoopFuture<PurchaseOutcome> {
        self.answer(on: eventLoop) { ledger, now in ledger.buy(account: account, node: node, now: now) }
    }

    public func pay(order: String, account: String, on eventLoop: (any EventLoop)?) -> EventLoopFuture<PaymentOutcome> {
        self.answer(on: eventLoop) { ledger, now in ledger.pay(order: order, account: account, now: now) }
    }

    public func order(id: String, on eventLoop: (any EventLoop)?) -> EventLoopFuture<String?> {
        self.answer(on: eventLoop) { ledger, _ in ledger.order(id: id)?.json }
    }

    public func reap(limit: Int, on eventLoop: (any EventLoop)?) -> EventLoopFuture<Int> {
        self.answer(on: eventLoop) { ledger, now in ledger.reap(limit: limit, now: now) }
    }

    /// Nothing is ever unconfirmed here (there are no replicas); a write the ledger has is
    /// confirmed.
    public func reconcile(_ writes: [UnconfirmedWrite], on eventLoop: (any EventLoop)?) -> EventLoopFuture<[Reconciliation]> {
        self.answer(on: eventLoop) { ledger, _ in
            writes.map { write in
                guard let record = ledger.order(id: write.order), record.account == write.account, !write.payment || record.state == .paid else {
                    return .lost
                }
                return .confirmed
            }
        }
    }

    public func ping(on eventLoop: (any EventLoop)?) -> EventLoopFuture<Void> {
        (eventLoop ?? self.group.next()).makeSucceededVoidFuture()
    }
}

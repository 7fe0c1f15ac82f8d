import GateCore
import NIOCore

/// Where a ticket node keeps the sale: `SaleStore` (Redis, shared by every node and process)
/// or `MemorySaleStore` (in this process only, for the demo without a `redis-server`).
///
/// Each method's future completes on `eventLoop` when one is given.
public protocol TicketStore: Sendable {
    /// The sale's id.
    var sale: String { get }

    /// The sale's counters; `noSuchSale` when it was never initialised.
    func status(on eventLoop: (any EventLoop)?) -> EventLoopFuture<SaleStatus>

    /// Reserves a ticket for `account`, recorded as sold by node `node`.
    func buy(account: String, node: String, on eventLoop: (any EventLoop)?) -> EventLoopFuture<PurchaseOutcome>

    /// Pays `order` on behalf of `account`.
    func pay(order: String, account: String, on eventLoop: (any EventLoop)?) -> EventLoopFuture<PaymentOutcome>

    /// The order's record as JSON (`account`, `node`, `created`, `expires`, `status`, `paid`),
    /// or `nil` when there is no such order.
    func order(id: String, on eventLoop: (any EventLoop)?) -> EventLoopFuture<String?>

    /// Returns up to `limit` expired reservations to stock; how many it returned.
    func reap(limit: Int, on eventLoop: (any EventLoop)?) -> EventLoopFuture<Int>

    /// Looks again at purchases and payments answered `unconfirmed`; one result per write, in
    /// order.
    func reconcile(_ writes: [UnconfirmedWrite], on eventLoop: (any EventLoop)?) -> EventLoopFuture<[Reconciliation]>

    /// Fails when the store cannot be reached (a node's `/health`).
    func ping(on eventLoop: (any EventLoop)?) -> EventLoopFuture<Void>
}

extension TicketStore {
    /// Async form of `status`.
    public func status() async throws -> SaleStatus {
        try await self.status(on: nil).get()
    }

    /// Async form of `buy`.
    public func buy(account: String, node: String) async throws -> PurchaseOutcome {
        try await self.buy(account: account, node: node, on: nil).get()
    }

    /// Async form of `pay`.
    public func pay(order: String, account: String) async throws -> PaymentOutcome {
        try await self.pay(order: order, account: account, on: nil).get()
    }

    /// Async form of `order`.
    public func order(id: String) async throws -> String? {
        try await self.order(id: id, on: nil).get()
    }

    /// Async form of `reap`.
    public func reap(limit: Int = 1_000) async throws -> Int {
        try await self.reap(limit: limit, on: nil).get()
    }
}

/// A purchase (or, with `payment`, a payment) of `order` by `account` that too few replicas
/// acknowledged in time. Order ids can repeat after a fail-over lost writes, so the account is
/// part of what names it.
public struct UnconfirmedWrite: Sendable, Hashable {
    public let order: String
    public let account: String
    public let payment: Bool

    public init(order: String, account: String, payment: Bool) {
        self.order = order
        self.account = account
        self.payment = payment
    }
}

/// What a purchase attempt came to.
public enum PurchaseOutcome: Sendable, Hashable {
    /// A ticket is reserved for the account as `order`, unpaid until `expiresAtMilliseconds`
    /// (the store's clock: Redis's, or the process's for the in-process store); `sold` of `total`
    /// are now taken.
    case reserved(order: String, sold: Int, total: Int, expiresAtMilliseconds: Int64)
    /// No ticket left: `sold` of `total` are reserved or paid.
    case soldOut(sold: Int, total: Int)
    /// The account already holds `order` (reserved or paid): one ticket per account.
    case alreadyHolds(order: String)
    /// The primary reserved `order`, but fewer than `required` replicas acknowledged the write
    /// in time (`acknowledged` did): a fail-over now could lose it. Neither sold nor refused
    /// until reconciled.
    case unconfirmed(order: String, acknowledged: Int, required: Int)
}

/// What a payment attempt came to.
public enum PaymentOutcome: Sendable, Hashable {
    /// Paid now.
    case paid
    /// It had been paid before (paying twice is harmless).
    case alreadyPaid
    /// No order has this id.
    case noSuchOrder
    /// The reservation expired and its ticket went back to stock.
    case expired
    /// The order belongs to another account.
    case notYourOrder
    /// The primary recorded the payment, but fewer than `required` replicas acknowledged it in
    /// time (`acknowledged` did).
    case unconfirmed(acknowledged: Int, required: Int)
}

/// What a later look at an unconfirmed write found.
public enum Reconciliation: Sendable, Hashable {
    /// The write is on the primary and now on enough replicas.
    case confirmed
    /// The write is not on the primary: lost in a fail-over (the account may buy or pay again).
    case lost
    /// The write is on the primary but still not on enough replicas: look again later.
    case pending
}

/// A sale's counters, as `sale status` and `GET /stock` show them.
public struct SaleStatus: Sendable, Hashable {
    public let total: Int
    /// Reserved (unpaid, unexpired) plus paid.
    public let sold: Int
    public let paid: Int
    public let payTimeout: Duration
    /// Orders ever created, expired ones included.
    public let orders: Int

    public init(total: Int, sold: Int, paid: Int, payTimeout: Duration, orders: Int) {
        self.total = total
        self.sold = sold
        self.paid = paid
        self.payTimeout = payTimeout
        self.orders = orders
    }

    public var reserved: Int {
        self.sold - self.paid
    }

    public var remaining: Int {
        self.total - self.sold
    }
}

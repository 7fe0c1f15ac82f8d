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

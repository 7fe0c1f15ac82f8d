/// The Redis keys of one sale, all under the hash tag `{sale:ID}` so every script touching them
/// runs on one Redis Cluster slot.
///
/// - `meta` (hash): `total`, `sold` (reserved + paid), `paid`, `pay_timeout_ms`, `seq` (last
///   order number), `created_ms`.
/// - `holders` (hash): account → the order it holds (reserved or paid). At most one per account.
/// - `orders` (hash): order id → JSON record `{account, node, created, expires, status[, paid]}`,
///   status one of `reserved`, `paid`, `expired`.
/// - `expiry` (sorted set): reserved order ids scored by expiry time (ms, Redis's clock).
public struct SaleKeys: Sendable, Hashable {
    public let sale: String
    public let meta: String
    public let holders: String
    public let orders: String
    public let expiry: String

    /// Keys for sale `sale`; the id must be non-empty and free of `{`, `}` and spaces.
    public init(sale: String) throws(SaleError) {
        guard !sale.isEmpty, sale.utf8.count <= 64,
            sale.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
        else {
            throw SaleError(
                code: .invalidSale,
                message: "sale id '\(sale)' must be 1-64 characters of letters, digits, '-', '_' or '.'"
            )
        }
        let tag = "{sale:\(sale)}"
        self.sale = sale
        self.meta = tag + ":meta"
        self.holders = tag + ":holders"
        self.orders = tag + ":orders"
        self.expiry = tag + ":expiry"
    }

    /// Every key, in the order the scripts take them.
    var all: [String] {
        [self.meta, self.holders, self.orders, self.expiry]
    }
}

/// When a route's sale is over and the gateway answers "sold out" itself (`sold_out:` on a
/// route): the backends say so by a JSON `code` in the answer, a header, or the stock in Redis
/// reaching zero. While latched, the gateway lets one request through (or reads the stock)
/// every `recheck`, since expired reservations bring tickets back.
public struct SoldOutPolicy: Sendable, Hashable {
    /// Where the stock is read: a hash holding the total and the number sold (the ticket
    /// node's `{sale:ID}:meta` with `total` and `sold`).
    public struct Stock: Sendable, Hashable {
        public var key: String
        public var totalField: String
        public var soldField: String

        public init(key: String, totalField: String = "total", soldField: String = "sold") {
            self.key = key
            self.totalField = totalField
            self.soldField = soldField
        }

        /// The shipped ticket node's stock of sale `sale`.
        public static func sale(_ sale: String) -> Stock {
            Stock(key: "{sale:\(sale)}:meta")
        }
    }

    /// An answer whose JSON body has this top-level `code` says "sold out" (the ticket node: -1).
    public var jsonCode: Int?
    /// An answer carrying this header (any value) says "sold out".
    public var header: String? {
        didSet {
            self.headerLowercased = self.header?.lowercased()
        }
    }
    /// `header` in lower case, made once (answers' field names are compared with it).
    public private(set) var headerLowercased: String?
    /// The stock in Redis, read every `recheck` (needs the gateway's `redis:`).
    public var stock: Stock?
    /// How often a latched route asks again.
    public var recheck: Duration

    public init(jsonCode: Int? = nil, header: String? = nil, stock: Stock? = nil, recheck: Duration = .seconds(1)) {
        self.jsonCode = jsonCode
        self.header = header
        self.headerLowercased = header?.lowercased()
        self.stock = stock
        self.recheck = recheck
    }
}

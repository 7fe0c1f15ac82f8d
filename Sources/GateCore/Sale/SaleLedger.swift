/// One sale's stock kept in memory: the same rules as the Redis scripts of the ticket node
/// (`SaleScripts`), for the in-process store the demo uses when no `redis-server` is installed.
/// Pure: time (milliseconds of a wall clock) is passed in; the caller serialises access.
///
/// - A ticket is reserved while `sold < total` (reserved plus paid), for an account holding
///   none; the reservation expires `payTimeoutMilliseconds` later unless paid.
/// - An expired reservation goes back to stock when `reap` finds it or when its payment comes
///   too late, and the account may buy again.
/// - Order ids count up from 1 and are never reused, not even after `initialize(force:)`.
public struct SaleLedger: Sendable {
    /// One order's record.
    public struct Order: Sendable, Hashable {
        public enum State: String, Sendable, Hashable {
            case reserved, paid, expired
        }

        public let account: String
        public let node: String
        public let createdMilliseconds: Int64
        public let expiresMilliseconds: Int64
        public var state: State
        public var paidMilliseconds: Int64?

        /// The record as the Redis store keeps it: `{account, node, created, expires, status[, paid]}`.
        public var json: String {
            var json = "{\"account\":\(jsonString(self.account)),\"node\":\(jsonString(self.node)),"
                + "\"created\":\(self.createdMilliseconds),\"expires\":\(self.expiresMilliseconds),"
                + "\"status\":\"\(self.state.rawValue)\""
            if let paid = self.paidMilliseconds {
                json += ",\"paid\":\(paid)"
            }
            return json + "}"
        }
    }

    /// Why `initialize` refused.
    public struct SaleInProgress: Error, Sendable, Hashable {
        public let sold: Int
    }

    public private(set) var total: Int
    /// Reserved (unpaid, unexpired) plus paid.
    public private(set) var sold = 0
    public private(set) var paid = 0
    public private(set) var payTimeoutMilliseconds: Int64
    /// The last order number handed out.
    public private(set) var sequence = 0
    private var orders: [String: Order] = [:]
    /// Account → the order it holds (reserved or paid).
    private var holders: [String: String] = [:]
    /// Reserved orders by expiry, oldest first from `expiryStart` (entries before it are gone).
    private var expiry: [(expires: Int64, id: String)] = []
    private var expiryStart = 0

    /// A sale of `tickets` tickets whose reservations last `payTimeoutMilliseconds`.
    public init(tickets: Int, payTimeoutMilliseconds: Int64) {
        precondition(tickets > 0 && payTimeoutMilliseconds > 0, "a sale needs tickets and a positive pay timeout")
        self.total = tickets
        self.payTimeoutMilliseconds = payTimeoutMilliseconds
    }

    /// Starts the sale over with `tickets` tickets; refused while tickets are sold or paid
    /// unless `force`. The order counter carries on.
    public mutating func initialize(tickets: Int, payTimeoutMilliseconds: Int64, force: Bool) throws(SaleInProgress) {
        precondition(tickets > 0 && payTimeoutMilliseconds > 0, "a sale needs tickets and a positive pay timeout")
        guard force || (self.sold == 0 && self.paid == 0) else {
            throw SaleInProgress(sold: self.sold)
        }
        let sequence = self.sequence
        self = SaleLedger(tickets: tickets, payTimeoutMilliseconds: payTimeoutMilliseconds)
        self.sequence = sequence
    }

    /// The counters (`payTimeout` from `payTimeoutMilliseconds`; `orders` counts every order
    /// ever created, expired ones included).
    public var status: SaleStatus {
        SaleStatus(
            total: self.total,
            sold: self.sold,
            paid: self.paid,
            payTimeout: .milliseconds(self.payTimeoutMilliseconds),
            orders: self.orders.count
        )
    }

    /// The record of order `id`.
    public func order(id: String) -> Order? {
        self.orders[id]
    }

    /// Live orders (reserved or paid) by account: every value is 1 unless something is wrong.
    public var liveOrdersByAccount: [String: Int] {
        var live: [String: Int] = [:]
        for order in self.orders.values where order.state != .expired {
            live[order.account, default: 0] += 1
        }
        return live
    }

    /// Reserves a ticket for `account`, sold by `node`, at `now`.
    public mutating func buy(account: String, node: String, now: Int64) -> PurchaseOutcome {
        if let held = self.holders[account] {
            return .alreadyHolds(order: held)
        }
        guard self.sold < self.total else {
            return .soldOut(sold: self.sold, total: self.total)
        }
        self.sequence += 1
        let id = String(self.sequence)
        let expires = now + self.payTimeoutMilliseconds
        self.orders[id] = Order(account: account, node: node, createdMilliseconds: now, expiresMilliseconds: expires, state: .reserved)
        self.holders[account] = id
        self.insertExpiry(expires, id: id)
        self.sold += 1
        return .reserved(order: id, sold: self.sold, total: self.total, expiresAtMilliseconds: expires)
    }

    /// Pays order `id` on behalf of `account` at `now`; a payment at or after the expiry time
    /// returns the ticket to stock and is refused.
    public mutating func pay(order id: String, account: String, now: Int64) -> PaymentOutcome {
        guard var order = self.orders[id] else {
            return .noSuchOrder
        }
        guard order.account == account else {
            return .notYourOrder
        }
        switch order.state {
        case .paid:
            return .alreadyPaid
        case .expired:
            return .expired
        case .reserved:
            break
        }
        guard order.expiresMilliseconds > now else {
            self.expire(id)
            return .expired
        }
        order.state = .paid
        order.paidMilliseconds = now
        self.orders[id] = order
        self.paid += 1
        return .paid
    }

    /// Returns up to `limit` reservations expired by `now` to stock; how many it returned.
    /// Paid orders met on the way are passed over (the Redis script removes them from its
    /// expiry set when paid); each entry is passed once, so the work is bounded by the orders.
    public mutating func reap(limit: Int, now: Int64) -> Int {
        var returned = 0
        while returned < limit, self.expiryStart < self.expiry.count, self.expiry[self.expiryStart].expires <= now {
            let id = self.expiry[self.expiryStart].id
            self.expiryStart += 1
            if self.orders[id]?.state == .reserved {
                self.expire(id)
                returned += 1
            }
        }
        if self.expiryStart > 1_024 && self.expiryStart * 2 > self.expiry.count {
            self.expiry.removeFirst(self.expiryStart)
            self.expiryStart = 0
        }
        return returned
    }

    private mutating func expire(_ id: String) {
        guard var order = self.orders[id], order.state == .reserved else {
            return
        }
        order.state = .expired
        self.orders[id] = order
        if self.holders[order.account] == id {
            self.holders[order.account] = nil
        }
        self.sold -= 1
    }

    /// Keeps `expiry` sorted; usually an append (expiry times grow with the clock), a binary
    /// search when the clock stepped back.
    private mutating func insertExpiry(_ expires: Int64, id: String) {
        guard let last = self.expiry.last, last.expires > expires, self.expiryStart < self.expiry.count else {
            self.expiry.append((expires, id))
            return
        }
        var low = self.expiryStart
        var high = self.expiry.count
        while low < high {
            let middle = (low + high) / 2
            if self.expiry[middle].expires <= expires {
                low = middle + 1
            } else {
                high = middle
            }
        }
        self.expiry.insert((expires, id), at: low)
    }
}

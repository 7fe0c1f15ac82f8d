import GateCore
import GateRedis
import NIOCore

/// One sale's stock in Redis: every change goes through one of `SaleScripts`, atomically.
///
/// Future-returning methods take the event loop to complete on (a NIO handler's own); the
/// `async` ones are for the command line and tests.
public final class SaleStore: TicketStore {
    /// How many replicas must have a purchase or payment before it is answered (`WAIT` after
    /// the script), and how long to wait for them.
    public struct Acknowledgement: Sendable, Hashable {
        public var replicas: Int
        public var timeout: Duration

        public init(replicas: Int, timeout: Duration) {
            self.replicas = replicas
            self.timeout = timeout
        }

        /// `WAIT replicas milliseconds`.
        var command: RedisCommand {
            RedisCommand("WAIT", .integer(Int64(self.replicas)), .integer(max(1, self.timeout.nanosecondsClamped / 1_000_000)))
        }
    }

    public let keys: SaleKeys
    public let redis: RedisClient
    /// `nil`: answered as soon as the primary has the write (replication is asynchronous).
    public let acknowledgement: Acknowledgement?

    public var sale: String {
        self.keys.sale
    }

    /// A store for sale `sale` on `redis`; throws `invalidSale` for an unusable id. With
    /// `acknowledgement`, purchases and payments run on an exclusive connection followed by
    /// `WAIT`, and one acknowledged by too few replicas is answered `unconfirmed`.
    public init(redis: RedisClient, sale: String, acknowledgement: Acknowledgement? = nil) throws(SaleError) {
        self.keys = try SaleKeys(sale: sale)
        self.redis = redis
        self.acknowledgement = acknowledgement.flatMap { $0.replicas > 0 ? $0 : nil }
    }

    /// What a script's reply did to the data, for the replica acknowledgement.
    enum Effect {
        /// Nothing to make durable (sold out, not found, …).
        case none
        /// It wrote: `WAIT` for the replicas.
        case wrote
        /// It found the write already there (held, paid before): a retry of a write that may
        /// have been answered "not confirmed". Only a fresh write behind it, acknowledged,
        /// proves the replicas have it too (`WAIT` counts this connection's writes).
        case found
    }

    /// Runs `script` and, with an acknowledgement required, makes what `effect` says durable
    /// on the same connection: the reply, and how many replicas acknowledged (`nil` when
    /// nobody asked). A `WAIT` that fails counts as none.
    private func evaluate(
        _ script: RedisScript,
        arguments: [RedisArgument],
        on eventLoop: (any EventLoop)?,
        effect: @escaping @Sendable (RESPValue) -> Effect
    ) -> EventLoopFuture<(reply: RESPValue, acknowledged: Int?)> {
        guard let acknowledgement = self.acknowledgement else {
            return self.redis.evaluate(script, keys: self.keys.all, arguments: arguments, on: eventLoop).map { ($0, nil) }
        }
        let keys = self.keys.all
        let meta = self.keys.meta
        return self.redis.leaseConnection(forKey: self.keys.meta, on: eventLoop).flatMap { connection in
            connection.evaluate(script, keys: keys, arguments: arguments).flatMap { reply -> EventLoopFuture<(reply: RESPValue, acknowledged: Int?)> in
                let marked: EventLoopFuture<Void>
                switch effect(reply) {
                case .none:
                    return connection.eventLoop.makeSucceededFuture((reply, nil))
                case .wrote:
                    marked = connection.eventLoop.makeSucceededVoidFuture()
                case .found:
                    marked = connection.send(RedisCommand("HINCRBY", .string(meta), "acknowledged_checks", 1)).map { _ in }
                }
                return marked.flatMap {
                    connection.send(acknowledgement.command, timeout: acknowledgement.timeout + .seconds(1))
                }
                .map { acknowledged in (reply, Int(acknowledged.int ?? 0)) }
                .recover { _ in (reply, 0) }
            }.always { _ in
                connection.release()
            }
        }
    }

    /// Loads every script into Redis's cache (start-up warm-up; `EVALSHA` reloads on its own).
    public func loadScripts() async throws {
        for script in SaleScripts.all {
            try await self.redis.load(script)
        }
    }

    /// Creates the sale with `tickets` tickets; refuses to overwrite one with sold or paid
    /// tickets unless `force`.
    public func initialize(tickets: Int, payTimeout: Duration, force: Bool) async throws {
        guard tickets > 0 else {
            throw SaleError(code: .invalidSale, message: "a sale needs at least one ticket, not \(tickets)")
        }
        let milliseconds = payTimeout.nanosecondsClamped / 1_000_000
        guard milliseconds > 0 else {
            throw SaleError(code: .invalidSale, message: "the pay timeout must be positive")
        }
        let reply = try await self.redis.evaluate(
            SaleScripts.initialize,
            keys: self.keys.all,
            arguments: [.integer(Int64(tickets)), .integer(milliseconds), .string(force ? "1" : "0")]
        )
        let fields = try Self.integers(reply, script: "init")
        if fields.first == -1 {
            throw SaleError(
                code: .saleInProgress,
                message: "sale '\(self.keys.sale)' has \(fields.count > 1 ? fields[1] : 0) tickets sold; re-initialise with --force to discard them"
            )
        }
    }

    /// Deletes every key of the sale.
    public func reset() async throws {
        _ = try await self.redis.send(RedisCommand("DEL", arguments: self.keys.all.map { .string($0) }))
    }

    /// The sale's counters; `noSuchSale` when it was never initialised.
    public func status(on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<SaleStatus> {
        let sale = self.keys.sale
        return self.redis.pipeline([
            RedisCommand("HMGET", .string(self.keys.meta), "total", "sold", "paid", "pay_timeout_ms"),
            RedisCommand("HLEN", .string(self.keys.orders)),
        ], on: eventLoop).flatMapThrowing { replies in
            guard let fields = replies.first?.array, fields.count == 4, let total = fields[0].int else {
                throw SaleError(code: .noSuchSale, message: "sale '\(sale)' is not initialised (spikegate sale init)")
            }
            return SaleStatus(
                total: Int(total),
                sold: Int(fields[1].int ?? 0),
                paid: Int(fields[2].int ?? 0),
                payTimeout: .milliseconds(fields[3].int ?? 0),
                orders: Int(replies.last?.int ?? 0)
            )
        }
    }

    /// Reserves a ticket for `account`, recorded as sold by node `node`.
    public func buy(account: String, node: String, on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<PurchaseOutcome> {
        let sale = self.keys.sale
        let required = self.acknowledgement?.replicas ?? 0
        return self.evaluate(SaleScripts.buy, arguments: [.string(account), .string(node)], on: eventLoop) { reply in
            switch reply.array?.first?.int {
            case 1: .wrote
            case -2: .found
            default: .none
            }
        }.flatMapThrowing { reply, acknowledged in
            let outcome = try Self.purchaseOutcome(reply, sale: sale)
            guard let acknowledged, acknowledged < required else {
                return outcome
            }
            switch outcome {
            case .reserved(let order, _, _, _), .alreadyHolds(let order):
                return .unconfirmed(order: order, acknowledged: acknowledged, required: required)
            default:
                return outcome
            }
        }
    }

    private static func purchaseOutcome(_ reply: RESPValue, sale: String) throws -> PurchaseOutcome {
        guard let fields = reply.array, let code = fields.first?.int else {
            throw SaleError(code: .unexpectedReply, message: "buy answered \(reply)")
        }
        switch (code, fields.count) {
        case (1, 5):
            return .reserved(
                order: fields[3].string ?? "",
                sold: Int(fields[1].int ?? 0),
                total: Int(fields[2].int ?? 0),
                expiresAtMilliseconds: fields[4].int ?? 0
            )
        case (-1, 3):
            return .soldOut(sold: Int(fields[1].int ?? 0), total: Int(fields[2].int ?? 0))
        case (-2, 4):
            return .alreadyHolds(order: fields[3].string ?? "")
        case (-3, _):
            throw SaleError(code: .noSuchSale, message: "sale '\(sale)' is not initialised (spikegate sale init)")
        default:
            throw SaleError(code: .unexpectedReply, message: "buy answered \(reply)")
        }
    }

    /// Pays `order` on behalf of `account`.
    public func pay(order: String, account: String, on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<PaymentOutcome> {
        let required = self.acknowledgement?.replicas ?? 0
        return self.evaluate(SaleScripts.pay, arguments: [.string(order), .string(account)], on: eventLoop) { reply in
            switch reply.array?.first?.int {
            // Paid now, or a reservation found expired and returned to stock.
            case 1, -6: .wrote
            case 2: .found
            default: .none
            }
        }.flatMapThrowing { reply, acknowledged in
            let confirmed = acknowledged.map { $0 >= required } ?? true
            switch reply.array?.first?.int {
            case 1:
                return confirmed ? .paid : .unconfirmed(acknowledged: acknowledged ?? 0, required: required)
            case 2:
                return confirmed ? .alreadyPaid : .unconfirmed(acknowledged: acknowledged ?? 0, required: required)
            case -4:
                return .noSuchOrder
            case -6:
                return .expired
            case -7:
                return .notYourOrder
            default:
                throw SaleError(code: .unexpectedReply, message: "pay answered \(reply)")
            }
        }
    }

    /// The order's record as JSON (`account`, `node`, `created`, `expires`, `status`, `paid`),
    /// or `nil` when there is no such order.
    public func order(id: String, on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<String?> {
        self.redis.send(RedisCommand("HGET", .string(self.keys.orders), .string(id)), on: eventLoop).map { reply in
            reply.string
        }
    }

    /// Looks again at unconfirmed purchases and payments, on one connection: their records in
    /// one pipeline; a write the primary no longer has (the order gone, its id now another
    /// account's, a payment no longer paid) is `lost`. If any is still there, one fresh write
    /// behind them all (a counter in the sale's meta) and one `WAIT`: replication keeps order,
    /// so when enough replicas acknowledge it they have every record before it — `confirmed`;
    /// otherwise `pending`.
    public func reconcile(_ writes: [UnconfirmedWrite], on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<[Reconciliation]> {
        let orders = self.keys.orders
        let meta = self.keys.meta
        let acknowledgement = self.acknowledgement
        guard !writes.isEmpty else {
            return (eventLoop ?? self.redis.eventLoops[0]).makeSucceededFuture([])
        }
        return self.redis.leaseConnection(forKey: meta, on: eventLoop).flatMap { connection in
            connection.pipeline(writes.map { RedisCommand("HGET", .string(orders), .string($0.order)) }).flatMap { replies -> EventLoopFuture<[Reconciliation]> in
                // A purchase is kept if its order is there (paid or expired since, it was
                // real); a payment only if the order is paid.
                let kept = zip(writes, replies).map { write, reply -> Bool in
                    guard let record = reply.string, let fields = Self.fields(ofOrder: record) else {
                        return false
                    }
                    return fields.account == write.account && (!write.payment || fields.status == "paid")
                }
                guard kept.contains(true), let acknowledgement else {
                    return connection.eventLoop.makeSucceededFuture(kept.map { $0 ? .confirmed : .lost })
                }
                return connection.send(RedisCommand("HINCRBY", .string(meta), "acknowledged_checks", 1)).flatMap { _ in
                    connection.send(acknowledgement.command, timeout: acknowledgement.timeout + .seconds(1))
                }.map { acknowledged in
                    let durable = Int(acknowledged.int ?? 0) >= acknowledgement.replicas
                    return kept.map { $0 ? (durable ? .confirmed : .pending) : .lost }
                }
            }.always { _ in
                connection.release()
            }
        }
    }

    /// The `account` and `status` of an order's JSON record.
    static func fields(ofOrder record: String) -> (account: String, status: String)? {
        guard let members = try? JSONObjectReader.members(of: Array(record.utf8)),
            case .string(let account)? = members["account"], case .string(let status)? = members["status"]
        else {
            return nil
        }
        return (account, status)
    }

    /// Answers when Redis answers `PING`.
    public func ping(on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<Void> {
        self.redis.send(RedisCommand("PING"), on: eventLoop).map { _ in }
    }

    /// Returns up to `limit` expired reservations to stock; how many it returned.
    public func reap(limit: Int = 1_000, on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<Int> {
        self.redis.evaluate(
            SaleScripts.reap,
            keys: self.keys.all,
            arguments: [.integer(Int64(limit))],
            on: eventLoop
        ).flatMapThrowing { reply in
            guard let returned = reply.int else {
                throw SaleError(code: .unexpectedReply, message: "reap answered \(reply)")
            }
            return Int(returned)
        }
    }

    private static func integers(_ reply: RESPValue, script: String) throws -> [Int64] {
        guard let fields = reply.array?.map({ $0.int }), !fields.contains(nil) else {
            throw SaleError(code: .unexpectedReply, message: "\(script) answered \(reply)")
        }
        return fields.compactMap { $0 }
    }
}

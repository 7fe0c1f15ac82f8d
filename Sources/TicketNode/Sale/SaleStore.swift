import GateCore
import GateRedis
import NIOCore

/// One sale's stock in Redis: every change goes through one of `SaleScripts`, atomically.
///
/// Future-returning methods take the event loop to complete on (a NIO handler's own); the
/// `async` ones are for the command line and tests.
public final class SaleStore: TicketStore {
    public let keys: SaleKeys
    public let redis: RedisClient

    public var sale: String {
        self.keys.sale
    }

    /// A store for sale `sale` on `redis`; throws `invalidSale` for an unusable id.
    public init(redis: RedisClient, sale: String) throws(SaleError) {
        self.keys = try SaleKeys(sale: sale)
        self.redis = redis
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
        return self.redis.evaluate(
            SaleScripts.buy,
            keys: self.keys.all,
            arguments: [.string(account), .string(node)],
            on: eventLoop
        ).flatMapThrowing { reply in
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
    }

    /// Pays `order` on behalf of `account`.
    public func pay(order: String, account: String, on eventLoop: (any EventLoop)? = nil) -> EventLoopFuture<PaymentOutcome> {
        self.redis.evaluate(
            SaleScripts.pay,
            keys: self.keys.all,
            arguments: [.string(order), .string(account)],
            on: eventLoop
        ).flatMapThrowing { reply in
            switch reply.array?.first?.int {
            case 1:
                return .paid
            case 2:
                return .alreadyPaid
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

import GateCore
import GateRedis
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Everything a request of the ticket node needs, shared by all connections.
final class TicketNodeContext: Sendable {
    let name: String
    let store: any TicketStore
    let stock: LocalStock
    let logger: Logger
    /// Where each answered request is recorded, when `--stat-log` is set.
    let statLog: StatLog?
    /// One "purchase failed" line per second at most while Redis is away.
    private let failureLog = Mutex(EventThrottle(interval: .seconds(1)))
    /// Purchases and payments answered `unconfirmed`, until reconciled.
    private let unconfirmed = Mutex(UnconfirmedWrites())

    init(name: String, store: any TicketStore, stock: LocalStock, statLog: StatLog?, logger: Logger) {
        self.name = name
        self.store = store
        self.stock = stock
        self.statLog = statLog
        self.logger = logger
    }

    /// The request target without its query.
    private static func path(of head: HTTPRequestHead) -> Substring {
        head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
    }

    /// The stat log's name for the endpoint `head` asks for.
    static func routeName(of head: HTTPRequestHead) -> String {
        let path = Self.path(of: head)
        if path == "/buy/ticket" {
            return "buy"
        }
        if path.hasPrefix("/orders/") {
            return path.hasSuffix("/pay") ? "pay" : "order"
        }
        switch path {
        case "/health": return "health"
        case "/stock": return "stock"
        default: return "other"
        }
    }

    /// Answers one request; the future completes on `eventLoop`.
    func route(_ head: HTTPRequestHead, on eventLoop: any EventLoop) -> EventLoopFuture<TicketResponse> {
        let path = Self.path(of: head)
        let segments = path.split(separator: "/")
        switch (head.method, segments.count) {
        case (.POST, 2) where segments[0] == "buy" && segments[1] == "ticket",
            (.GET, 2) where segments[0] == "buy" && segments[1] == "ticket":
            return self.buy(head, on: eventLoop)
        case (.POST, 3) where segments[0] == "orders" && segments[2] == "pay":
            return self.pay(order: String(segments[1]), head, on: eventLoop)
        case (.GET, 2) where segments[0] == "orders":
            return self.order(id: String(segments[1]), on: eventLoop)
        case (.GET, 1) where segments[0] == "health":
            return self.health(on: eventLoop)
        case (.GET, 1) where segments[0] == "stock":
            return self.stockReport(on: eventLoop)
        default:
            let known = ["/buy/ticket", "/orders", "/health", "/stock"].contains { path.hasPrefix($0) }
            return eventLoop.makeSucceededFuture(known
                ? .error(.methodNotAllowed, code: -405, "\(head.method) is not allowed on \(path)")
                : .error(.notFound, code: -404, "no such endpoint: \(path)"))
        }
    }

    /// Runs `body` with the account named by `X-Account-Id`, or answers 400 without one.
    private func withAccount(
        _ head: HTTPRequestHead,
        on eventLoop: any EventLoop,
        _ body: (String) -> EventLoopFuture<TicketResponse>
    ) -> EventLoopFuture<TicketResponse> {
        guard let account = head.headers.first(name: "X-Account-Id"), !account.isEmpty else {
            return eventLoop.makeSucceededFuture(.error(.badRequest, code: -400, "missing X-Account-Id header"))
        }
        guard account.utf8.count <= 128, account.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            return eventLoop.makeSucceededFuture(.error(.badRequest, code: -400, "X-Account-Id must be 1-128 printable characters"))
        }
        return body(account)
    }

    private func buy(_ head: HTTPRequestHead, on eventLoop: any EventLoop) -> EventLoopFuture<TicketResponse> {
        self.withAccount(head, on: eventLoop) { account in self.buy(account: account, on: eventLoop) }
    }

    private func buy(account: String, on eventLoop: any EventLoop) -> EventLoopFuture<TicketResponse> {
        // Local share first: once it is used up, or Redis said sold out, no Redis trip.
        guard self.stock.tryTake() else {
            return eventLoop.makeSucceededFuture(.soldOut)
        }
        let stock = self.stock
        return self.store.buy(account: account, node: self.name, on: eventLoop).map { outcome -> TicketResponse in
            switch outcome {
            case .reserved(let order, _, _, _):
                return .json(.ok, "{\"code\":1,\"msg\":\"success\",\"order\":\(jsonString(order))}")
            case .soldOut:
                stock.giveBack()
                stock.latchSoldOut()
                return .soldOut
            case .alreadyHolds(let order):
                stock.giveBack()
                return .json(.ok, code: -2, "{\"code\":-2,\"msg\":\"account already holds a ticket\",\"order\":\(jsonString(order))}")
            case .unconfirmed(let order, let acknowledged, let required):
                // The share stays taken until the reconciler knows whether the order survived.
                self.remember(UnconfirmedWrite(order: order, account: account, payment: false))
                return .json(.serviceUnavailable, code: -13, """
                    {"code":-13,"msg":"purchase not confirmed: \(acknowledged) of \(required) replicas acknowledged it in time; \
                    ask again (the order is kept if it survives a fail-over)","order":\(jsonString(order))}
                    """, retryAfter: 1)
            }
        }.flatMapErrorThrowing { error in
            stock.giveBack()
            self.warnThrottled("purchase failed", error: error)
            return .error(.serviceUnavailable, code: -5, "stock store unavailable: \(error)")
        }
    }

    /// Logs `message` with `error`, at most once a second, with how many were held back.
    private func warnThrottled(_ message: Logger.Message, error: any Error) {
        let now = MonotonicInstant.now()
        guard let heldBack = self.failureLog.withLock({ $0.admit(at: now) }) else {
            return
        }
        self.logger.warning(message, metadata: ["error": "\(error)", "similar_held_back": "\(heldBack)"])
    }

    private func pay(order: String, _ head: HTTPRequestHead, on eventLoop: any EventLoop) -> EventLoopFuture<TicketResponse> {
        self.withAccount(head, on: eventLoop) { account in self.pay(order: order, account: account, on: eventLoop) }
    }

    private func pay(order: String, account: String, on eventLoop: any EventLoop) -> EventLoopFuture<TicketResponse> {
        self.store.pay(order: order, account: account, on: eventLoop).map { outcome -> TicketResponse in
            switch outcome {
            case .paid:
                return .json(.ok, "{\"code\":1,\"msg\":\"paid\",\"order\":\(jsonString(order))}")
            case .alreadyPaid:
                return .json(.ok, code: 2, "{\"code\":2,\"msg\":\"already paid\",\"order\":\(jsonString(order))}")
            case .noSuchOrder:
                return .error(.notFound, code: -4, "no such order: \(order)")
            case .expired:
                return .error(.gone, code: -6, "the reservation expired and its ticket went back to stock")
            case .notYourOrder:
                return .error(.forbidden, code: -7, "the order belongs to another account")
            case .unconfirmed(let acknowledged, let required):
                self.remember(UnconfirmedWrite(order: order, account: account, payment: true))
                return .json(.serviceUnavailable, code: -13, """
                    {"code":-13,"msg":"payment not confirmed: \(acknowledged) of \(required) replicas acknowledged it in time; \
                    pay again (paying twice is harmless)","order":\(jsonString(order))}
                    """, retryAfter: 1)
            }
        }.flatMapErrorThrowing { error in
            .error(.serviceUnavailable, code: -5, "stock store unavailable: \(error)")
        }
    }

    private func order(id: String, on eventLoop: any EventLoop) -> EventLoopFuture<TicketResponse> {
        self.store.order(id: id, on: eventLoop).map { record -> TicketResponse in
            guard let record else {
                return .error(.notFound, code: -4, "no such order: \(id)")
            }
            return .json(.ok, "{\"code\":1,\"id\":\(jsonString(id)),\"order\":\(record)}")
        }.flatMapErrorThrowing { error in
            .error(.serviceUnavailable, code: -5, "stock store unavailable: \(error)")
        }
    }

    private func health(on eventLoop: any EventLoop) -> EventLoopFuture<TicketResponse> {
        self.store.ping(on: eventLoop).map { _ in
            .json(.ok, "{\"status\":\"ok\"}")
        }.flatMapErrorThrowing { error in
            .error(.serviceUnavailable, code: -5, "stock store unavailable: \(error)")
        }
    }

    private func stockReport(on eventLoop: any EventLoop) -> EventLoopFuture<TicketResponse> {
        let local = self.stock.snapshot
        let name = self.name
        let writes = self.unconfirmed.withLock { $0 }
        return self.store.status(on: eventLoop).map { status -> TicketResponse in
            .json(.ok, """
                {"total":\(status.total),"sold":\(status.sold),"paid":\(status.paid),"reserved":\(status.reserved),\
                "remaining":\(status.remaining),"node":{"name":\(jsonString(name)),"share":\(local.share),\
                "limit":\(local.limit),"taken":\(local.taken),"sold_out":\(local.soldOut),\
                "unconfirmed":\(writes.pending.count),"confirmed_later":\(writes.confirmed),"lost":\(writes.lost)}}
                """)
        }.flatMapErrorThrowing { error in
            .error(.serviceUnavailable, code: -5, "stock store unavailable: \(error)")
        }
    }

    // MARK: Unconfirmed writes

    private func remember(_ write: UnconfirmedWrite) {
        let new = self.unconfirmed.withLock { $0.pending.insert(write).inserted }
        if new {
            self.logger.warning("write not acknowledged by enough replicas; reconciling later", metadata: [
                "order": "\(write.order)", "account": "\(write.account)", "payment": "\(write.payment)",
            ])
        }
    }

    /// How many purchases and payments wait for reconciliation.
    var unconfirmedCount: Int {
        self.unconfirmed.withLock { $0.pending.count }
    }

    /// Looks again at every unconfirmed write (the reconciler, every `reconcileInterval`, one
    /// store call for all): a confirmed one is done; a lost purchase gives its share back (the
    /// account may buy again); a lost payment leaves the reservation unpaid (the buyer pays
    /// again); a pending one, or all when the store cannot be asked, wait for the next round.
    func reconcile(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let writes = self.unconfirmed.withLock { Array($0.pending) }
        guard !writes.isEmpty else {
            return eventLoop.makeSucceededVoidFuture()
        }
        return self.store.reconcile(writes, on: eventLoop).map { results in
            for (write, result) in zip(writes, results) {
                self.settle(write, result)
            }
        }.recover { error in
            self.warnThrottled("reconciliation failed; trying again", error: error)
        }
    }

    private func settle(_ write: UnconfirmedWrite, _ result: Reconciliation) {
        guard result != .pending else {
            return
        }
        let removed = self.unconfirmed.withLock { writes -> Bool in
            guard writes.pending.remove(write) != nil else {
                return false
            }
            if result == .confirmed {
                writes.confirmed += 1
            } else {
                writes.lost += 1
            }
            return true
        }
        guard removed else {
            return
        }
        if result == .lost && !write.payment {
            self.stock.giveBack()
        }
        self.logger.notice(result == .confirmed ? "unconfirmed write confirmed" : "unconfirmed write lost in a fail-over", metadata: [
            "order": "\(write.order)", "account": "\(write.account)", "payment": "\(write.payment)",
        ])
    }
}

/// Purchases and payments the primary recorded but too few replicas acknowledged in time.
struct UnconfirmedWrites: Sendable {
    var pending: Set<UnconfirmedWrite> = []
    /// Reconciled as kept.
    var confirmed = 0
    /// Reconciled as lost (not on the primary after a fail-over).
    var lost = 0
}

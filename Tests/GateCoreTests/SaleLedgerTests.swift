import GateCore
import Testing

/// The in-process sale: the rules of the Redis scripts, checked one by one and under a long
/// random run of purchases, payments, expiries and reaps.
@Suite struct SaleLedgerTests {
    @Test func oneTicketPerAccountAndSoldOutAtTheStock() {
        var ledger = SaleLedger(tickets: 2, payTimeoutMilliseconds: 1_000)
        #expect(ledger.buy(account: "a", node: "n1", now: 100) == .reserved(order: "1", sold: 1, total: 2, expiresAtMilliseconds: 1_100))
        #expect(ledger.buy(account: "a", node: "n2", now: 101) == .alreadyHolds(order: "1"))
        #expect(ledger.buy(account: "b", node: "n2", now: 102) == .reserved(order: "2", sold: 2, total: 2, expiresAtMilliseconds: 1_102))
        #expect(ledger.buy(account: "c", node: "n1", now: 103) == .soldOut(sold: 2, total: 2))
        // An account holding a ticket is told so even when the sale is sold out.
        #expect(ledger.buy(account: "b", node: "n1", now: 104) == .alreadyHolds(order: "2"))
        #expect(ledger.status == SaleStatus(total: 2, sold: 2, paid: 0, payTimeout: .seconds(1), orders: 2))
        #expect(ledger.liveOrdersByAccount == ["a": 1, "b": 1])
    }

    @Test func paymentChecksTheOwnerTheStateAndTheExpiry() {
        var ledger = SaleLedger(tickets: 3, payTimeoutMilliseconds: 1_000)
        _ = ledger.buy(account: "a", node: "n1", now: 0)
        _ = ledger.buy(account: "b", node: "n1", now: 0)
        #expect(ledger.pay(order: "9", account: "a", now: 10) == .noSuchOrder)
        #expect(ledger.pay(order: "1", account: "b", now: 10) == .notYourOrder)
        #expect(ledger.pay(order: "1", account: "a", now: 999) == .paid)
        #expect(ledger.pay(order: "1", account: "a", now: 5_000) == .alreadyPaid, "a paid order never expires")
        #expect(ledger.order(id: "1")?.paidMilliseconds == 999)
        // Paying at the expiry instant is too late: the ticket goes back to stock at once.
        #expect(ledger.pay(order: "2", account: "b", now: 1_000) == .expired)
        #expect(ledger.order(id: "2")?.state == .expired)
        #expect(ledger.status.sold == 1 && ledger.status.paid == 1)
        #expect(ledger.pay(order: "2", account: "b", now: 1_001) == .expired)
        // The account may buy again; the new order has a new id.
        #expect(ledger.buy(account: "b", node: "n2", now: 1_002) == .reserved(order: "3", sold: 2, total: 3, expiresAtMilliseconds: 2_002))
    }

    @Test func reapReturnsExpiredReservationsOnlyAndHonoursTheLimit() {
        var ledger = SaleLedger(tickets: 10, payTimeoutMilliseconds: 100)
        for index in 0..<5 {
            _ = ledger.buy(account: "u\(index)", node: "n", now: Int64(index))
        }
        #expect(ledger.pay(order: "2", account: "u1", now: 50) == .paid)
        #expect(ledger.reap(limit: 10, now: 99) == 0, "nothing has expired yet")
        #expect(ledger.reap(limit: 2, now: 102) == 2, "orders 1 and 3 (2 is paid)")
        #expect(ledger.reap(limit: 10, now: 1_000) == 2)
        #expect(ledger.reap(limit: 10, now: 2_000) == 0)
        #expect(ledger.status == SaleStatus(total: 10, sold: 1, paid: 1, payTimeout: .milliseconds(100), orders: 5))
        #expect(ledger.liveOrdersByAccount == ["u1": 1])
        #expect(ledger.order(id: "1")?.json == #"{"account":"u0","node":"n","created":0,"expires":100,"status":"expired"}"#)
        #expect(ledger.order(id: "2")?.json == #"{"account":"u1","node":"n","created":1,"expires":101,"status":"paid","paid":50}"#)
    }

    @Test func aClockSteppingBackStillReapsEachReservationWhenItExpires() {
        var ledger = SaleLedger(tickets: 10, payTimeoutMilliseconds: 100)
        _ = ledger.buy(account: "late", node: "n", now: 1_000)  // expires 1,100
        _ = ledger.buy(account: "early", node: "n", now: 500)  // the clock stepped back: expires 600
        #expect(ledger.reap(limit: 10, now: 600) == 1)
        #expect(ledger.order(id: "2")?.state == .expired && ledger.order(id: "1")?.state == .reserved)
        #expect(ledger.reap(limit: 10, now: 1_100) == 1)
    }

    @Test func initializeRefusesASaleUnderWayUnlessForcedAndNeverReusesOrderIds() throws {
        var ledger = SaleLedger(tickets: 5, payTimeoutMilliseconds: 100)
        _ = ledger.buy(account: "a", node: "n", now: 0)
        let refused = #expect(throws: SaleLedger.SaleInProgress.self) {
            try ledger.initialize(tickets: 7, payTimeoutMilliseconds: 100, force: false)
        }
        #expect(refused?.sold == 1)
        #expect(ledger.status.total == 5, "a refused initialisation changes nothing")
        try ledger.initialize(tickets: 7, payTimeoutMilliseconds: 200, force: true)
        #expect(ledger.status == SaleStatus(total: 7, sold: 0, paid: 0, payTimeout: .milliseconds(200), orders: 0))
        #expect(ledger.buy(account: "a", node: "n", now: 0) == .reserved(order: "2", sold: 1, total: 7, expiresAtMilliseconds: 200))
    }

    @Test(arguments: [1, 2, 3])
    func aLongRandomSaleKeepsEveryInvariant(seed: UInt64) {
        var random = SplitMix64(seed: seed)  // seeded: a failure repeats
        var ledger = SaleLedger(tickets: 50, payTimeoutMilliseconds: 40)
        var now: Int64 = 0
        var orders: [(id: String, account: String)] = []
        var purchases = 0
        for step in 0..<20_000 {
            now += Int64.random(in: -2...5, using: &random)  // the clock may step back a little
            let account = "acct-\(Int.random(in: 0..<200, using: &random))"
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<6:
                if case .reserved(let id, let sold, let total, _) = ledger.buy(account: account, node: "n", now: now) {
                    #expect(sold <= total)
                    orders.append((id, account))
                    purchases += 1
                }
            case 6..<9:
                if let order = orders.randomElement(using: &random) {
                    _ = ledger.pay(order: order.id, account: order.account, now: now)
                }
            default:
                _ = ledger.reap(limit: Int.random(in: 1...20, using: &random), now: now)
            }
            let status = ledger.status
            #expect(status.sold <= status.total, "oversold at \(now)")
            #expect(status.paid <= status.sold)
            guard step % 50 == 0 else {
                continue
            }
            let live = ledger.liveOrdersByAccount
            #expect(live.values.allSatisfy { $0 == 1 }, "an account holds two tickets")
            #expect(live.values.reduce(0, +) == status.sold, "the counter disagrees with the orders")
        }
        #expect(purchases > 50, "the run must sell more than the stock (expiries return tickets)")
        #expect(ledger.status.orders == purchases)
    }
}

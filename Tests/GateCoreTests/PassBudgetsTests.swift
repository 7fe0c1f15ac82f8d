import GateCore
import Testing

/// Pass budgets: spent per request, remembered until the pass expires, counted while in use.
@Suite struct PassBudgetsTests {
    /// The book under test, by reference (so `#expect` can call its mutating methods).
    final class Book {
        var book: PassBudgets

        init(capacity: Int = 1_000_000) {
            self.book = PassBudgets(capacity: capacity)
        }

        var count: Int { self.book.count }
        func inUse(now: Int64) -> Int { self.book.inUse(now: now) }
        func issued(_ pass: PassToken, budget: Int, now: Int64) -> Bool { self.book.issued(pass, budget: budget, now: now) }
        func spend(_ pass: PassToken, budget: Int, now: Int64) -> Bool { self.book.spend(pass, budget: budget, now: now) }
        func left(_ pass: PassToken) -> Int? { self.book.left(pass) }
    }

    static func pass(_ nonce: String, expires: Int64) -> PassToken {
        PassToken(keyID: "k1", expires: expires, prefix: "203.0.113.0/24", route: "POST /buy", nonce: nonce)
    }

    @Test func aPassIsSpentRequestByRequestAndStaysSpentUntilItExpires() {
        let book = Book()
        let pass = Self.pass("a", expires: 1_100)
        #expect(book.issued(pass, budget: 3, now: 1_000))
        #expect(book.inUse(now: 1_000) == 1)
        #expect(book.spend(pass, budget: 3, now: 1_001))
        #expect(book.spend(pass, budget: 3, now: 1_002))
        #expect(book.left(pass) == 1)
        #expect(book.spend(pass, budget: 3, now: 1_003))
        #expect(!book.spend(pass, budget: 3, now: 1_004))
        // Spent: no longer in use, but remembered (a fresh budget would be a free pass).
        #expect(book.inUse(now: 1_004) == 0)
        #expect(book.count == 1)
        #expect(!book.spend(pass, budget: 3, now: 1_050))
        // Expired: forgotten, and refused anyway.
        #expect(book.inUse(now: 1_100) == 0)
        #expect(book.count == 0)
        #expect(!book.spend(pass, budget: 3, now: 1_100))
        #expect(book.count == 0)
    }

    @Test func aPassFirstSeenHereGetsThisGatewaysBudget() {
        let book = Book()
        let pass = Self.pass("from-another-gateway", expires: 2_000)
        #expect(book.spend(pass, budget: 2, now: 1_000))
        #expect(book.left(pass) == 1)
        #expect(book.inUse(now: 1_000) == 1)
        #expect(book.spend(pass, budget: 2, now: 1_000))
        #expect(!book.spend(pass, budget: 2, now: 1_000))
        #expect(book.inUse(now: 1_000) == 0)
        // Issued again (a repeated registration) does not refill it.
        #expect(book.issued(pass, budget: 2, now: 1_000))
        #expect(book.left(pass) == 0)
    }

    @Test func passesExpireEachAtItsOwnTimeWithLongGapsBetweenCalls() {
        let book = Book()
        for index in 0..<10 {
            _ = book.issued(Self.pass("p\(index)", expires: 1_000 + Int64(index) * 10), budget: 5, now: 900)
        }
        #expect(book.inUse(now: 900) == 10)
        // Seconds walked one by one: p0 … p4 expire at 1000 … 1040.
        #expect(book.inUse(now: 1_040) == 5)
        // A long gap (walked by bucket): everything gone.
        #expect(book.inUse(now: 1_000_000) == 0)
        #expect(book.count == 0)
        // A clock stepping back forgets nothing and counts nothing twice.
        _ = book.issued(Self.pass("late", expires: 1_000_100), budget: 1, now: 1_000_000)
        #expect(book.inUse(now: 999_000) == 1)
        #expect(book.spend(Self.pass("late", expires: 1_000_100), budget: 1, now: 1_000_001))
        #expect(book.inUse(now: 1_000_001) == 0)
        #expect(book.inUse(now: 1_000_100) == 0)
        #expect(book.count == 0)
    }

    @Test func aFullBookRefusesNewPassesUntilSomeExpire() {
        let book = Book(capacity: 2)
        #expect(book.issued(Self.pass("a", expires: 1_010), budget: 1, now: 1_000))
        #expect(book.spend(Self.pass("b", expires: 1_020), budget: 1, now: 1_000))
        // Full of passes still able to be shown (one of them spent): a new one is refused,
        // the known ones are not.
        #expect(!book.issued(Self.pass("c", expires: 1_030), budget: 1, now: 1_000))
        #expect(!book.spend(Self.pass("c", expires: 1_030), budget: 1, now: 1_000))
        #expect(book.spend(Self.pass("a", expires: 1_010), budget: 1, now: 1_000))
        // "a" expires: room again.
        #expect(book.spend(Self.pass("c", expires: 1_030), budget: 1, now: 1_010))
        #expect(book.count == 2)
    }

    @Test func anExpiredOrZeroBudgetPassIsNeverAccepted() {
        let book = Book()
        #expect(!book.spend(Self.pass("old", expires: 999), budget: 5, now: 1_000))
        #expect(!book.issued(Self.pass("old", expires: 1_000), budget: 5, now: 1_000))
        #expect(!book.spend(Self.pass("none", expires: 2_000), budget: 0, now: 1_000))
        #expect(book.count == 0)
        #expect(book.inUse(now: 1_000) == 0)
    }
}

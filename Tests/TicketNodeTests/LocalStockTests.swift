import Testing
import TicketNode

@Suite("LocalStock")
struct LocalStockTests {
    @Test("the share plus its buffer is taken exactly, from many threads at once")
    func exactUnderConcurrency() async {
        let stock = LocalStock(share: 1_000, buffer: 0.2)
        let taken = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var mine = 0
                    for _ in 0..<1_000 where stock.tryTake() {
                        mine += 1
                    }
                    return mine
                }
            }
            return await group.reduce(0, +)
        }
        #expect(taken == 1_200)
        #expect(stock.isClosed)
        #expect(stock.snapshot.taken == 1_200)
    }

    @Test("given-back tickets can be taken again")
    func giveBack() {
        let stock = LocalStock(share: 2, buffer: 0)
        #expect(stock.tryTake() && stock.tryTake())
        #expect(!stock.tryTake())
        stock.giveBack()
        #expect(stock.tryTake())
    }

    @Test("sold out latches; a refresh with tickets left reopens it and raises an exhausted limit")
    func latchAndRefresh() {
        let stock = LocalStock(share: 3, buffer: 0)
        stock.latchSoldOut()
        #expect(!stock.tryTake())
        stock.refresh(remaining: 0)
        #expect(stock.isClosed)
        stock.refresh(remaining: 5)
        #expect(!stock.isClosed)
        for _ in 0..<3 {
            #expect(stock.tryTake())
        }
        #expect(!stock.tryTake(), "share exhausted")
        stock.refresh(remaining: 2)
        #expect(stock.tryTake() && stock.tryTake())
        #expect(!stock.tryTake())
        #expect(stock.snapshot.limit == 5)
    }
}

import GateCore
import Testing

@Suite("Smooth weighted round-robin")
struct SmoothWeightedRoundRobinTests {
    @Test("weights 1,2,3,4 over 1,000 picks: exactly 100/200/300/400, never four in a row from one backend")
    func proportionsAndInterleaving() {
        var balancer = SmoothWeightedRoundRobin(count: 4)
        var counts = [0, 0, 0, 0]
        var longestRun = 0
        var run = 0
        var previous: Int?
        for _ in 0..<1_000 {
            let pick = balancer.pick(weights: [1, 2, 3, 4])!
            counts[pick] += 1
            run = pick == previous ? run + 1 : 1
            longestRun = max(longestRun, run)
            previous = pick
        }
        #expect(counts == [100, 200, 300, 400])
        #expect(longestRun < 4, "a run of \(longestRun) picks of one backend")
    }

    @Test("nginx's sequence for weights 5,1,1: a a b a c a a")
    func nginxSequence() {
        var balancer = SmoothWeightedRoundRobin(count: 3)
        let picks = (0..<7).map { _ in balancer.pick(weights: [5, 1, 1])! }
        #expect(picks == [0, 0, 1, 0, 2, 0, 0])
    }

    @Test("a member with weight 0 is never picked; its share goes to the others in proportion")
    func ineligibleMembers() {
        var balancer = SmoothWeightedRoundRobin(count: 4)
        var counts = [0, 0, 0, 0]
        for _ in 0..<900 {
            counts[balancer.pick(weights: [1, 2, 0, 6])!] += 1
        }
        #expect(counts == [100, 200, 0, 600])
        #expect(balancer.pick(weights: [0, 0, 0, 0]) == nil)
        #expect(balancer.pick(weights: [0, -1, 0, 0]) == nil)
    }

    @Test("a member that comes back at a reduced weight (slow start) gets that share while it ramps")
    func slowStartWeights() {
        var balancer = SmoothWeightedRoundRobin(count: 2)
        var counts = [0, 0]
        // Member 1 ramps at a quarter of its 400 for 500 picks, then at full weight.
        for _ in 0..<500 {
            counts[balancer.pick(weights: [400, 100])!] += 1
        }
        #expect(counts == [400, 100])
        counts = [0, 0]
        for _ in 0..<800 {
            counts[balancer.pick(weights: [400, 400])!] += 1
        }
        #expect(counts == [400, 400])
    }
}

/// nginx's smooth weighted round-robin: weights 1, 2, 3, 4 give exactly 100, 200, 300, 400 of
/// every 1,000 picks, interleaved (`d c b d c a d c d b` …), never a burst of one backend.
///
/// Each pick adds every eligible member's weight to its running score, takes the member with
/// the highest score (the first one on a tie) and subtracts the sum of the eligible weights
/// from the winner's score. Over any window of Σweights consecutive picks with unchanged
/// weights, each member is picked exactly `weight` times.
///
/// Weights are passed per pick, so health (weight 0 = not eligible), passive ejection and slow
/// start (a reduced weight while a backend ramps up) are decided elsewhere and simply change
/// the numbers. Callers that need fine slow-start steps scale every weight (e.g. ×100): the
/// proportions and the interleaving do not change.
public struct SmoothWeightedRoundRobin: Sendable {
    private var scores: [Int]

    /// A balancer over `count` members, all scores at zero.
    public init(count: Int) {
        self.scores = Array(repeating: 0, count: max(0, count))
    }

    /// The number of members.
    public var count: Int {
        self.scores.count
    }

    /// Picks a member given each member's current weight (`weights.count == count`; a weight
    /// ≤ 0 leaves that member out). `nil` when no member is eligible.
    public mutating func pick(weights: [Int]) -> Int? {
        precondition(weights.count == self.scores.count, "one weight per member")
        var total = 0
        var best: Int?
        for index in self.scores.indices {
            let weight = weights[index]
            guard weight > 0 else {
                continue
            }
            self.scores[index] += weight
            total += weight
            if let chosen = best {
                if self.scores[index] > self.scores[chosen] {
                    best = index
                }
            } else {
                best = index
            }
        }
        if let best {
            self.scores[best] -= total
        }
        return best
    }

    /// Forgets the accumulated scores (after the member list changed shape).
    public mutating func reset(count: Int) {
        self.scores = Array(repeating: 0, count: max(0, count))
    }
}

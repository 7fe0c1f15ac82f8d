/// "Did you mean …?": the known name closest to a misspelt one, by edit distance.
///
/// A name counts as close when at most a third of its characters (and at least one) need an
/// insertion, deletion, substitution or swap of neighbours, so `intervall` finds `interval` and `backend` finds
/// `backends`, while `timeout` does not turn into `upstream`. Case differences count, since
/// keys and names are case-sensitive.
enum SpellingSuggestion {
    /// The closest of `candidates` to `name` if one is close enough; the first on a tie.
    static func closest(to name: String, among candidates: some Sequence<String>) -> String? {
        let limit = max(1, name.count / 3)
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = Self.editDistance(Array(name.unicodeScalars), Array(candidate.unicodeScalars))
            if distance <= limit, distance < best?.distance ?? .max {
                best = (candidate, distance)
            }
        }
        return best?.candidate
    }

    /// A hint for an unknown `name`: "did you mean 'x'?" when one is close, else the list of
    /// what is known (`nothing` when that is empty, in the words of `known`).
    static func hint(for name: String, among candidates: [String], known: String) -> String {
        if let closest = Self.closest(to: name, among: candidates) {
            return "did you mean '\(closest)'?"
        }
        if candidates.isEmpty {
            return "there are no \(known)"
        }
        return "\(known): " + candidates.joined(separator: ", ")
    }

    /// Edit distance counting a swap of two neighbours as one edit (optimal string alignment),
    /// since `idel` for `idle` is one slip of the fingers, not two.
    private static func editDistance(_ left: [Unicode.Scalar], _ right: [Unicode.Scalar]) -> Int {
        var distance = [[Int]](repeating: [Int](repeating: 0, count: right.count + 1), count: left.count + 1)
        for i in 0...left.count {
            distance[i][0] = i
        }
        for j in 0...right.count {
            distance[0][j] = j
        }
        for i in stride(from: 1, through: left.count, by: 1) {
            for j in stride(from: 1, through: right.count, by: 1) {
                let cost = left[i - 1] == right[j - 1] ? 0 : 1
                distance[i][j] = min(distance[i - 1][j] + 1, distance[i][j - 1] + 1, distance[i - 1][j - 1] + cost)
                if i > 1, j > 1, left[i - 1] == right[j - 2], left[i - 2] == right[j - 1] {
                    distance[i][j] = min(distance[i][j], distance[i - 2][j - 2] + 1)
                }
            }
        }
        return distance[left.count][right.count]
    }
}

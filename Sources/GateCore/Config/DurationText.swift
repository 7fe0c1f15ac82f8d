/// Durations as operators write them: `250ms`, `30s`, `10m`, `2h`, or combined (`1m30s`).
///
/// Used by command-line options and, later, rule and config files. A bare number is refused:
/// "10" could mean seconds or milliseconds, and a sale's pay timeout is no place to guess.
public enum DurationText {
    /// Why a duration did not parse, for an error message that says what to write instead.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public let text: String
        public let problem: String

        public var description: String {
            "'\(self.text)' is not a duration: \(self.problem) (write e.g. 250ms, 30s, 10m, 1h30m)"
        }
    }

    /// Parses `text`; units `ms`, `s`, `m`, `h`, each part a whole number.
    public static func parse(_ text: String) throws(ParseError) -> Duration {
        let trimmed = text.trimmingSpaces
        guard !trimmed.isEmpty else {
            throw ParseError(text: text, problem: "it is empty")
        }
        var total = Duration.zero
        var digits = ""
        var index = trimmed.startIndex
        while index < trimmed.endIndex {
            let character = trimmed[index]
            if character.isASCII, character.isNumber {
                digits.append(character)
                index = trimmed.index(after: index)
                continue
            }
            guard let value = Int64(digits) else {
                throw ParseError(text: text, problem: digits.isEmpty ? "a unit without a number" : "the number is too large")
            }
            digits = ""
            let rest = trimmed[index...]
            let unit: Duration
            if rest.hasPrefix("ms") {
                unit = .milliseconds(1)
                index = trimmed.index(index, offsetBy: 2)
            } else if rest.hasPrefix("s") {
                unit = .seconds(1)
                index = trimmed.index(after: index)
            } else if rest.hasPrefix("m") {
                unit = .seconds(60)
                index = trimmed.index(after: index)
            } else if rest.hasPrefix("h") {
                unit = .seconds(3600)
                index = trimmed.index(after: index)
            } else {
                throw ParseError(text: text, problem: "unknown unit at '\(rest)'")
            }
            total += unit * value
        }
        guard digits.isEmpty else {
            throw ParseError(text: text, problem: "'\(digits)' has no unit")
        }
        return total
    }

    /// `duration` in the largest unit that divides it: `10m`, `90s`, `250ms`.
    public static func format(_ duration: Duration) -> String {
        let milliseconds = duration.nanosecondsClamped / 1_000_000
        if milliseconds % 3_600_000 == 0 && milliseconds > 0 {
            return "\(milliseconds / 3_600_000)h"
        }
        if milliseconds % 60_000 == 0 && milliseconds > 0 {
            return "\(milliseconds / 60_000)m"
        }
        if milliseconds % 1_000 == 0 {
            return "\(milliseconds / 1_000)s"
        }
        return "\(milliseconds)ms"
    }
}

extension String {
    var trimmingSpaces: Substring {
        let start = self.firstIndex { $0 != " " } ?? self.endIndex
        let end = self.lastIndex { $0 != " " }.map { self.index(after: $0) } ?? start
        return self[start..<end]
    }
}

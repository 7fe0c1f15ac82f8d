/// One problem found in a configuration or rule file: where it is, what is wrong and how to fix
/// it.
///
/// Readers collect every diagnostic of a file (and of every rule file) before giving up, so one
/// run of `spikegate rules check` shows them all. `line` and `column` count from 1, as editors
/// do; a line of 0 means the problem has no single place (a missing file, an empty rules
/// directory, a rule set without upstreams), and `file` may then name a directory or be empty.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    /// The file the problem is in, as it was named to the reader.
    public var file: String
    /// The line, from 1; 0 when the problem has no single place.
    public var line: Int
    /// The column, from 1; 0 when the problem has no single place.
    public var column: Int
    /// The key path of the value, like `listeners[0].tls.certificate` or
    /// `upstreams.tickets.backends[2].weight`; empty for the whole file.
    public var path: String
    /// What is wrong.
    public var message: String
    /// How to fix it, e.g. "did you mean 'interval'?".
    public var hint: String?

    /// A diagnostic.
    public init(file: String, line: Int, column: Int, path: String, message: String, hint: String? = nil) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
        self.hint = hint
    }

    /// `gateway.yaml:12:5: listeners[0].address: <message> (hint: …)`, leaving out the parts
    /// that are empty or 0.
    public var description: String {
        var text = ""
        if !self.file.isEmpty {
            text += self.line > 0 ? "\(self.file):\(self.line):\(self.column): " : "\(self.file): "
        }
        if !self.path.isEmpty {
            text += "\(self.path): "
        }
        text += self.message
        if let hint = self.hint {
            text += " (hint: \(hint))"
        }
        return text
    }
}

extension [Diagnostic] {
    /// The diagnostics in reading order: by file, then line, then column; the order they were
    /// found in otherwise.
    func sortedByPlace() -> [Diagnostic] {
        self.enumerated().sorted { left, right in
            (left.element.file, left.element.line, left.element.column, left.offset)
                < (right.element.file, right.element.line, right.element.column, right.offset)
        }.map(\.element)
    }

    /// One line per diagnostic.
    var lines: String {
        self.map(\.description).joined(separator: "\n")
    }
}

import GateRules
import Testing

/// A bad fixture and the one diagnostic it must produce: where (file, line, key path) and a
/// fragment of what it says.
struct BadFixture: Sendable, CustomTestStringConvertible {
    /// What the fixture gets wrong, as the test's name.
    let name: String
    /// The files, by name (one for a gateway configuration).
    let files: [RuleText]
    /// The file the diagnostic names.
    let file: String
    /// The line it names (0: no single place).
    let line: Int
    /// The key path it names.
    let path: String
    /// A fragment of its message.
    let message: String
    /// A fragment of its hint, when the hint matters.
    let hint: String?

    /// One file, `gateway.yaml` or `rules.yaml`.
    init(_ name: String, _ yaml: String, file: String = "rules.yaml", line: Int, path: String, message: String, hint: String? = nil) {
        self.init(name, files: [RuleText(name: file, text: yaml)], file: file, line: line, path: path, message: message, hint: hint)
    }

    /// Several rule files.
    init(_ name: String, files: [RuleText], file: String, line: Int, path: String, message: String, hint: String? = nil) {
        self.name = name
        self.files = files
        self.file = file
        self.line = line
        self.path = path
        self.message = message
        self.hint = hint
    }

    var testDescription: String {
        self.name
    }

    /// Expects `diagnostics` to be exactly the one this fixture names.
    func check(_ diagnostics: [Diagnostic]) {
        #expect(diagnostics.count == 1, "\(diagnostics.map(\.description))")
        let match = diagnostics.first { diagnostic in
            diagnostic.file == self.file && diagnostic.line == self.line && diagnostic.path == self.path
                && diagnostic.message.contains(self.message)
                && (self.hint.map { diagnostic.hint?.contains($0) == true } ?? true)
        }
        #expect(match != nil, "expected \(self.file):\(self.line): \(self.path): …\(self.message)… in \(diagnostics.map(\.description))")
    }
}

/// A rule file's name and text.
struct RuleText: Sendable {
    let name: String
    let text: String
}

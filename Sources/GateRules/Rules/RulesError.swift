/// Why a directory of rule files could not be compiled: every problem found across the files.
///
/// The rules in force stay in force; nothing of a set with a problem is used.
public struct RulesError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The problems, by file and line; never empty.
    public var diagnostics: [Diagnostic]

    /// An error made of `diagnostics`.
    public init(diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics
    }

    /// One line per diagnostic.
    public var description: String {
        self.diagnostics.lines
    }
}

/// Why a gateway configuration file could not be used: every problem found in it.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The problems, in file order; never empty.
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

/// Why a value written as text in a configuration (a CIDR block, an address, a byte size) did
/// not parse: the kind of mistake, what is wrong, and what to write instead.
///
/// One type for every such parser, each defining its own codes as static members of `Code`
/// beside it (`CIDRBlock` here, `Endpoint` and `ByteSize` in GateRules), so a file reader turns
/// any of them into a diagnostic the same way.
public struct ValueParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of mistake; compare errors by this, never by their message.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String

        /// A code called `name` (snake case), for a parser of this package to define.
        package init(_ name: String) {
            self.name = name
        }

        public var description: String {
            self.name
        }
    }

    /// The kind of mistake.
    public let code: Code
    /// What the text should have been, as the message names it: `a CIDR block`, `an address`.
    public let expected: String
    /// The text that did not parse, as given.
    public let text: String
    /// What is wrong with it.
    public let problem: String
    /// How to fix it.
    public let hint: String

    /// An error; `text` is what did not parse, as given.
    package init(code: Code, expected: String, text: String, problem: String, hint: String) {
        self.code = code
        self.expected = expected
        self.text = text
        self.problem = problem
        self.hint = hint
    }

    public var description: String {
        "'\(self.text)' is not \(self.expected): \(self.problem) (\(self.hint))"
    }
}

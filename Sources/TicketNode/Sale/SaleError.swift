/// A failure of a sale operation that is not a plain purchase outcome.
public struct SaleError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) {
            self.name = name
        }

        /// The sale id is not usable as a key.
        public static let invalidSale = Code("invalid sale")
        /// The sale was never initialised (`spikegate sale init`).
        public static let noSuchSale = Code("no such sale")
        /// `init` would overwrite a sale that has sold tickets (use `--force`).
        public static let saleInProgress = Code("sale in progress")
        /// A script answered something it never answers: a bug or a foreign key.
        public static let unexpectedReply = Code("unexpected reply")

        public var description: String {
            self.name
        }
    }

    public let code: Code
    public let message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String {
        "\(self.code): \(self.message)"
    }
}

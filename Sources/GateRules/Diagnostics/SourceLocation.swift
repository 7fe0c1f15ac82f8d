/// Where a decoded value was written, kept so that checks made after decoding (across values
/// and files) can still point at the line to fix.
struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    /// The file, as named to the reader.
    let file: String
    /// The line, from 1.
    let line: Int
    /// The column, from 1.
    let column: Int
    /// The key path of the value.
    let path: NodePath

    /// `file:line`, for a message that points at a second place.
    var description: String {
        "\(self.file):\(self.line)"
    }
}

extension Diagnostic {
    /// A diagnostic about the value at `location`.
    init(_ message: String, at location: SourceLocation, hint: String? = nil) {
        self.init(
            file: location.file,
            line: location.line,
            column: location.column,
            path: location.path.description,
            message: message,
            hint: hint
        )
    }
}

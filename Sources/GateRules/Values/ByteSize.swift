import GateCore

/// Byte counts as operators write them: `512B`, `64KiB`, `1MiB`, `2GiB`, or plain digits for
/// bytes.
///
/// Units are binary (1 KiB = 1024 bytes) and written exactly as shown: `64KB`, `64k` or
/// `64kib` is refused with a hint rather than guessed, since "KB" means 1000 to some readers
/// and 1024 to others, and a body limit is no place to guess. No spaces, signs or fractions.
public enum ByteSize {
    /// Why a byte size did not parse; its codes are `invalidNumber`, `unknownUnit` and
    /// `tooLarge`.
    public typealias ParseError = ValueParseError

    /// What a `ParseError` says the text should have been.
    private static let expected = "a byte size"

    /// The units, by how they are written.
    private static let units: [(suffix: String, bytes: Int)] = [
        ("", 1), ("B", 1), ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
    ]

    /// Parses `text` into a number of bytes.
    public static func parse(_ text: String) throws(ParseError) -> Int {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = String(text.dropFirst(digits.count))
        guard !digits.isEmpty else {
            let problem = text.isEmpty ? "it is empty" : "it does not start with a whole number"
            throw ParseError(code: .invalidNumber, expected: Self.expected, text: text, problem: problem, hint: "write e.g. 512B, 64KiB or 1MiB")
        }
        guard unit.first != "." else {
            throw ParseError(code: .invalidNumber, expected: Self.expected, text: text, problem: "only whole numbers are allowed", hint: "use a smaller unit, e.g. 1536KiB for 1.5MiB")
        }
        guard let multiplier = Self.units.first(where: { $0.suffix == unit })?.bytes else {
            let known = Self.units.first { !$0.suffix.isEmpty && $0.suffix.lowercased().first == unit.lowercased().first }
            let hint = known.map { "did you mean \(String(digits))\($0.suffix)? sizes count in binary units: B, KiB, MiB, GiB" }
            throw ParseError(
                code: .unknownUnit,
                expected: Self.expected,
                text: text,
                problem: "unknown unit '\(unit)'",
                hint: hint ?? "write the unit as B, KiB, MiB or GiB, e.g. 64KiB"
            )
        }
        guard let value = Int(String(digits)) else {
            throw ParseError(code: .tooLarge, expected: Self.expected, text: text, problem: "the number is too large", hint: "write a smaller size")
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow else {
            throw ParseError(code: .tooLarge, expected: Self.expected, text: text, problem: "the size is too large", hint: "write a smaller size")
        }
        return bytes
    }
}

extension ValueParseError.Code {
    /// Byte size: the text is empty or does not start with a whole number.
    public static let invalidNumber = Self("invalid_number")
    /// Byte size: the unit after the number is not `B`, `KiB`, `MiB` or `GiB`.
    public static let unknownUnit = Self("unknown_unit")
    /// Byte size: the size does not fit in an `Int`.
    public static let tooLarge = Self("too_large")
}

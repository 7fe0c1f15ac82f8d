import GateCore
import Yams

/// Scalar values: each read checks the YAML type, then the text's form, then the range.
extension YAMLReader {
    /// Text: any scalar but an empty value or a boolean (`yes` and `true` are booleans in YAML;
    /// quote them to mean the word).
    package mutating func string(_ value: YAMLValue?) -> String? {
        guard let value else {
            return nil
        }
        guard case .scalar(let scalar) = value.node, value.tagName != .null, value.tagName != .bool else {
            self.reportType(of: value, expected: "a string", hint: value.tagName == .bool ? "quote it to mean the word" : nil)
            return nil
        }
        return scalar.string
    }

    /// Text that is not empty.
    package mutating func nonEmptyString(_ value: YAMLValue?) -> String? {
        guard let value, let text = self.string(value) else {
            return nil
        }
        guard !text.isEmpty else {
            self.report("must not be empty", at: value)
            return nil
        }
        return text
    }

    /// A whole number written in plain decimal digits, within `range`.
    package mutating func integer(_ value: YAMLValue?, in range: ClosedRange<Int>) -> Int? {
        guard let value else {
            return nil
        }
        guard case .scalar(let scalar) = value.node, value.tagName == .int else {
            self.reportType(of: value, expected: "a whole number", hint: "write \(Self.describe(range))")
            return nil
        }
        guard let number = Int(scalar.string) else {
            self.report("'\(scalar.string)' is not a plain decimal number", at: value, hint: "write \(Self.describe(range))")
            return nil
        }
        return self.checked(number, in: range, at: value, shownAs: scalar.string)
    }

    /// `true` or `false`.
    package mutating func boolean(_ value: YAMLValue?) -> Bool? {
        guard let value else {
            return nil
        }
        guard case .scalar(let scalar) = value.node, ["true", "false"].contains(scalar.string), value.tagName == .bool else {
            self.reportType(of: value, expected: "true or false")
            return nil
        }
        return scalar.string == "true"
    }

    /// A duration such as `500ms`, `2s` or `1m30s` (GateCore's `DurationText`); zero only when
    /// `allowingZero`.
    package mutating func duration(_ value: YAMLValue?, allowingZero: Bool = false) -> Duration? {
        guard let value else {
            return nil
        }
        let hint = "write a duration such as 2s or 500ms"
        guard case .scalar(let scalar) = value.node, value.tagName != .null, value.tagName != .bool else {
            self.reportType(of: value, expected: "a duration", hint: hint)
            return nil
        }
        let duration: Duration
        do {
            duration = try DurationText.parse(scalar.string)
        } catch {
            self.report("'\(scalar.string)' is not a duration: \(error.problem)", at: value, hint: hint)
            return nil
        }
        guard allowingZero || duration > .zero else {
            self.report("must be longer than 0s", at: value, hint: hint)
            return nil
        }
        return duration
    }

    /// A byte count: a whole number of bytes, or a size such as `64KiB` (`ByteSize`), within
    /// `range`.
    package mutating func byteSize(_ value: YAMLValue?, in range: ClosedRange<Int>) -> Int? {
        guard let value else {
            return nil
        }
        guard case .scalar(let scalar) = value.node, [.int, .str].contains(value.tagName) else {
            self.reportType(of: value, expected: "a byte size", hint: "write e.g. 512B, 64KiB or 1MiB")
            return nil
        }
        guard let bytes = self.parsed(scalar.string, at: value, with: ByteSize.parse) else {
            return nil
        }
        return self.checked(bytes, in: range, at: value, shownAs: scalar.string)
    }

    /// A `host:port` or `[ipv6]:port` address; port 0 only when `allowingPortZero`.
    package mutating func endpoint(_ value: YAMLValue?, allowingPortZero: Bool) -> Endpoint? {
        guard let value, let text = self.string(value) else {
            return nil
        }
        guard let endpoint = self.parsed(text, at: value, with: Endpoint.parse) else {
            return nil
        }
        guard allowingPortZero || endpoint.port != 0 else {
            self.report("port 0 is not allowed here", at: value, hint: "write the port the backend listens on")
            return nil
        }
        return endpoint
    }

    /// A network in CIDR notation (GateCore's `CIDRBlock`).
    package mutating func cidrBlock(_ value: YAMLValue?) -> CIDRBlock? {
        guard let value, let text = self.string(value) else {
            return nil
        }
        return self.parsed(text, at: value, with: CIDRBlock.init)
    }

    /// `text` parsed by `parse`, or `nil` with the parser's problem and hint reported.
    private mutating func parsed<Value>(_ text: String, at value: YAMLValue, with parse: (String) throws(ValueParseError) -> Value) -> Value? {
        do {
            return try parse(text)
        } catch {
            self.report("'\(text)' is not \(error.expected): \(error.problem)", at: value, hint: error.hint)
            return nil
        }
    }

    private mutating func checked(_ number: Int, in range: ClosedRange<Int>, at value: YAMLValue, shownAs text: String) -> Int? {
        guard range.contains(number) else {
            self.report("\(text) is out of range", at: value, hint: "write \(Self.describe(range))")
            return nil
        }
        return number
    }

    /// `a whole number from 1 to 1000`, or `at least 1` when the range has no real top.
    private static func describe(_ range: ClosedRange<Int>) -> String {
        range.upperBound == .max
            ? "a whole number of at least \(range.lowerBound)"
            : "a whole number from \(range.lowerBound) to \(range.upperBound)"
    }
}

/// Reads the top-level members of one JSON object (RFC 8259) — what a JWT's header and claims
/// are — without Foundation: strings (escapes decoded), numbers, booleans, null; nested arrays
/// and objects are checked and kept only as arrays of strings (a JWT's `aud`). Strict: trailing
/// bytes, duplicate members, control characters in strings and nesting deeper than 16 are errors.
public struct JSONObjectReader {
    public enum Value: Sendable, Hashable {
        case string(String)
        case number(Double)
        case bool(Bool)
        case null
        /// An array; its string elements (other elements are dropped).
        case strings([String])
        /// A nested object (its contents are not kept).
        case object
    }

    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public let message: String
        public var description: String { self.message }
    }

    private let bytes: [UInt8]
    private var index = 0

    private init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The members of the object `bytes` holds.
    public static func members(of bytes: [UInt8]) throws(Failure) -> [String: Value] {
        var reader = JSONObjectReader(bytes)
        reader.skipSpace()
        guard reader.peek == UInt8(ascii: "{") else {
            throw Failure(message: "not a JSON object")
        }
        var members: [String: Value] = [:]
        try reader.object(depth: 0, into: &members)
        reader.skipSpace()
        guard reader.index == reader.bytes.count else {
            throw Failure(message: "bytes after the JSON object")
        }
        return members
    }

    private var peek: UInt8? {
        self.index < self.bytes.count ? self.bytes[self.index] : nil
    }

    private mutating func skipSpace() {
        while let byte = self.peek, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
            self.index += 1
        }
    }

    private mutating func expect(_ byte: UInt8) throws(Failure) {
        self.skipSpace()
        guard self.peek == byte else {
            throw Failure(message: "expected '\(Character(Unicode.Scalar(byte)))' at byte \(self.index)")
        }
        self.index += 1
    }

    /// An object; its members go into `members` when given (the top level), else are checked only.
    private mutating func object(depth: Int, into members: inout [String: Value]) throws(Failure) {
        guard depth < 16 else {
            throw Failure(message: "JSON nested too deep")
        }
        try self.expect(UInt8(ascii: "{"))
        self.skipSpace()
        if self.peek == UInt8(ascii: "}") {
            self.index += 1
            return
        }
        while true {
            self.skipSpace()
            let name = try self.string()
            try self.expect(UInt8(ascii: ":"))
            let value = try self.value(depth: depth + 1)
            if depth == 0 {
                guard members.updateValue(value, forKey: name) == nil else {
                    throw Failure(message: "member \"\(name)\" appears twice")
                }
            }
            self.skipSpace()
            switch self.peek {
            case UInt8(ascii: ","):
                self.index += 1
            case UInt8(ascii: "}"):
                self.index += 1
                return
            default:
                throw Failure(message: "expected ',' or '}' at byte \(self.index)")
            }
        }
    }

    private mutating func value(depth: Int) throws(Failure) -> Value {
        self.skipSpace()
        switch self.peek {
        case UInt8(ascii: "\""):
            return .string(try self.string())
        case UInt8(ascii: "{"):
            var ignored: [String: Value] = [:]
            try self.object(depth: depth, into: &ignored)
            return .object
        case UInt8(ascii: "["):
            return .strings(try self.array(depth: depth))
        case UInt8(ascii: "t"):
            try self.literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try self.literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try self.literal("null")
            return .null
        case .some(let byte) where byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte):
            return .number(try self.number())
        default:
            throw Failure(message: "expected a JSON value at byte \(self.index)")
        }
    }

    private mutating func array(depth: Int) throws(Failure) -> [String] {
        guard depth < 16 else {
            throw Failure(message: "JSON nested too deep")
        }
        try self.expect(UInt8(ascii: "["))
        var strings: [String] = []
        self.skipSpace()
        if self.peek == UInt8(ascii: "]") {
            self.index += 1
            return strings
        }
        while true {
            if case .string(let text) = try self.value(depth: depth + 1) {
                strings.append(text)
            }
            self.skipSpace()
            switch self.peek {
            case UInt8(ascii: ","):
                self.index += 1
            case UInt8(ascii: "]"):
                self.index += 1
                return strings
            default:
                throw Failure(message: "expected ',' or ']' at byte \(self.index)")
            }
        }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count,
              word.withUTF8Buffer({ Array($0) }) == Array(self.bytes[self.index..<self.index + count])
        else {
            throw Failure(message: "bad literal at byte \(self.index)")
        }
        self.index += count
    }

    private mutating func number() throws(Failure) -> Double {
        let start = self.index
        if self.peek == UInt8(ascii: "-") {
            self.index += 1
        }
        func digits(_ reader: inout JSONObjectReader) -> Int {
            var count = 0
            while let byte = reader.peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                reader.index += 1
                count += 1
            }
            return count
        }
        let integerStart = self.index
        let integerDigits = digits(&self)
        guard integerDigits > 0, !(integerDigits > 1 && self.bytes[integerStart] == UInt8(ascii: "0")) else {
            throw Failure(message: "bad number at byte \(start)")
        }
        if self.peek == UInt8(ascii: ".") {
            self.index += 1
            guard digits(&self) > 0 else {
                throw Failure(message: "bad number at byte \(start)")
            }
        }
        if self.peek == UInt8(ascii: "e") || self.peek == UInt8(ascii: "E") {
            self.index += 1
            if self.peek == UInt8(ascii: "+") || self.peek == UInt8(ascii: "-") {
                self.index += 1
            }
            guard digits(&self) > 0 else {
                throw Failure(message: "bad number at byte \(start)")
            }
        }
        guard let value = Double(String(decoding: self.bytes[start..<self.index], as: UTF8.self)) else {
            throw Failure(message: "bad number at byte \(start)")
        }
        return value
    }

    private mutating func string() throws(Failure) -> String {
        guard self.peek == UInt8(ascii: "\"") else {
            throw Failure(message: "expected a string at byte \(self.index)")
        }
        self.index += 1
        var scalars = String.UnicodeScalarView()
        var run = self.index
        func flush(_ reader: JSONObjectReader, _ run: Int, into scalars: inout String.UnicodeScalarView) throws(Failure) {
            guard let text = String(validating: reader.bytes[run..<reader.index], as: UTF8.self) else {
                throw Failure(message: "a string that is not UTF-8 at byte \(run)")
            }
            scalars.append(contentsOf: text.unicodeScalars)
        }
        while true {
            guard let byte = self.peek else {
                throw Failure(message: "unterminated string")
            }
            if byte == UInt8(ascii: "\"") {
                try flush(self, run, into: &scalars)
                self.index += 1
                return String(scalars)
            }
            if byte < 0x20 {
                throw Failure(message: "control character in a string at byte \(self.index)")
            }
            guard byte == UInt8(ascii: "\\") else {
                self.index += 1
                continue
            }
            try flush(self, run, into: &scalars)
            self.index += 1
            guard let escape = self.peek else {
                throw Failure(message: "unterminated string")
            }
            self.index += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var unit = try self.hex4()
                if (0xD800...0xDBFF).contains(unit) {
                    guard self.peek == UInt8(ascii: "\\"), self.index + 1 < self.bytes.count, self.bytes[self.index + 1] == UInt8(ascii: "u") else {
                        throw Failure(message: "lone surrogate in a string at byte \(self.index)")
                    }
                    self.index += 2
                    let low = try self.hex4()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw Failure(message: "lone surrogate in a string at byte \(self.index)")
                    }
                    unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(unit) else {
                    throw Failure(message: "lone surrogate in a string at byte \(self.index)")
                }
                scalars.append(scalar)
            default:
                throw Failure(message: "bad escape in a string at byte \(self.index - 1)")
            }
            run = self.index
        }
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard self.index + 4 <= self.bytes.count else {
            throw Failure(message: "short \\u escape")
        }
        var value: UInt32 = 0
        for byte in self.bytes[self.index..<self.index + 4] {
            guard let digit = Int(String(Unicode.Scalar(byte)), radix: 16) else {
                throw Failure(message: "bad \\u escape at byte \(self.index)")
            }
            value = value << 4 | UInt32(digit)
        }
        self.index += 4
        return value
    }
}

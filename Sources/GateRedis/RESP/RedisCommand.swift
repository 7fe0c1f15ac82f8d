import NIOCore

/// One argument of a Redis command; every argument goes on the wire as a RESP bulk string.
public enum RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    /// UTF-8 text.
    case string(String)
    /// Raw bytes, sent as they are.
    case bytes(ByteBuffer)
    /// An integer, sent in decimal.
    case integer(Int64)

    public init(stringLiteral value: String) {
        self = .string(value)
    }

    public init(integerLiteral value: Int64) {
        self = .integer(value)
    }
}

/// A Redis command: its name and arguments, encoded as a RESP array of bulk strings.
///
/// Encoding writes straight into the connection's outbound buffer; no intermediate string is
/// built and the payload bytes are never escaped, so any binary value round-trips.
public struct RedisCommand: Sendable, Hashable, CustomStringConvertible {
    /// The name first, then the arguments.
    public var arguments: [RedisArgument]

    /// Creates `name` with `arguments`, e.g. `RedisCommand("SET", "k", "v")`.
    public init(_ name: String, _ arguments: RedisArgument...) {
        self.arguments = [.string(name)] + arguments
    }

    /// Creates `name` with an argument list built at run time.
    public init(_ name: String, arguments: [RedisArgument]) {
        self.arguments = [.string(name)] + arguments
    }

    /// The command name, upper-cased (for errors and logs).
    public var name: String {
        if case .string(let name) = self.arguments.first {
            return name.uppercased()
        }
        return "?"
    }

    /// Appends the RESP encoding of the command to `buffer`.
    ///
    /// The exact size is computed first and the bytes are written through one pointer, so a
    /// command costs one capacity check instead of one per field (this is the client's hot path).
    public func encode(into buffer: inout ByteBuffer) {
        var size = 1 + decimalDigits(self.arguments.count) + 2
        for argument in self.arguments {
            let length = argument.encodedLength
            size += 1 + decimalDigits(length) + 2 + length + 2
        }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            guard let base = raw.baseAddress else {
                return 0
            }
            var cursor = base
            cursor = writeHeader(UInt8(ascii: "*"), self.arguments.count, at: cursor)
            for argument in self.arguments {
                let length = argument.encodedLength
                cursor = writeHeader(UInt8(ascii: "$"), length, at: cursor)
                switch argument {
                case .string(let text):
                    var text = text
                    text.withUTF8 { utf8 in
                        if let source = utf8.baseAddress {
                            cursor.copyMemory(from: source, byteCount: length)
                        }
                    }
                case .bytes(let bytes):
                    bytes.withUnsafeReadableBytes { source in
                        if let sourceBase = source.baseAddress {
                            cursor.copyMemory(from: sourceBase, byteCount: length)
                        }
                    }
                case .integer(let value):
                    writeDecimal(value, digits: length, at: cursor)
                }
                cursor += length
                cursor = writeCRLF(at: cursor)
            }
            return cursor - base
        }
    }

    /// The command as `redis-cli` would show it, arguments past the name hidden after `AUTH`.
    public var description: String {
        if self.name == "AUTH" {
            return "AUTH ***"
        }
        return self.arguments.map { argument in
            switch argument {
            case .string(let text):
                return text
            case .bytes(let bytes):
                return "<\(bytes.readableBytes) bytes>"
            case .integer(let value):
                return String(value)
            }
        }.joined(separator: " ")
    }
}

extension RedisArgument {
    /// The number of bytes of the argument's bulk-string payload.
    var encodedLength: Int {
        switch self {
        case .string(let text):
            return text.utf8.count
        case .bytes(let bytes):
            return bytes.readableBytes
        case .integer(let value):
            return (value < 0 ? 1 : 0) + decimalDigits(value.magnitude)
        }
    }
}

/// How many decimal digits `value` has (1 for 0).
@inline(__always)
private func decimalDigits<Value: BinaryInteger>(_ value: Value) -> Int {
    var remaining = UInt64(value.magnitude)
    var digits = 1
    while remaining >= 10 {
        remaining /= 10
        digits += 1
    }
    return digits
}

/// Writes `marker`, `count` in decimal and CRLF at `cursor`; returns the position after them.
@inline(__always)
private func writeHeader(_ marker: UInt8, _ count: Int, at cursor: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
    cursor.storeBytes(of: marker, as: UInt8.self)
    let digits = decimalDigits(count)
    writeDecimal(Int64(count), digits: digits, at: cursor + 1)
    return writeCRLF(at: cursor + 1 + digits)
}

@inline(__always)
private func writeCRLF(at cursor: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
    cursor.storeBytes(of: UInt8(ascii: "\r"), as: UInt8.self)
    cursor.storeBytes(of: UInt8(ascii: "\n"), toByteOffset: 1, as: UInt8.self)
    return cursor + 2
}

/// Writes `value` in decimal, `digits` bytes long including any minus sign, at `cursor`.
@inline(__always)
private func writeDecimal(_ value: Int64, digits: Int, at cursor: UnsafeMutableRawPointer) {
    var remaining = value.magnitude
    var position = digits - 1
    if value < 0 {
        cursor.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self)
    }
    repeat {
        cursor.storeBytes(of: UInt8(ascii: "0") + UInt8(remaining % 10), toByteOffset: position, as: UInt8.self)
        remaining /= 10
        position -= 1
    } while remaining > 0
}

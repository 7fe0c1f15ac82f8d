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
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        buffer.writeDecimal(self.arguments.count)
        buffer.writeCRLF()
        for argument in self.arguments {
            switch argument {
            case .string(let text):
                buffer.writeInteger(UInt8(ascii: "$"))
                buffer.writeDecimal(text.utf8.count)
                buffer.writeCRLF()
                buffer.writeString(text)
            case .bytes(let bytes):
                buffer.writeInteger(UInt8(ascii: "$"))
                buffer.writeDecimal(bytes.readableBytes)
                buffer.writeCRLF()
                buffer.writeImmutableBuffer(bytes)
            case .integer(let value):
                var digits = ByteBuffer()
                digits.writeDecimal(value)
                buffer.writeInteger(UInt8(ascii: "$"))
                buffer.writeDecimal(digits.readableBytes)
                buffer.writeCRLF()
                buffer.writeImmutableBuffer(digits)
            }
            buffer.writeCRLF()
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

extension ByteBuffer {
    @inline(__always)
    mutating func writeCRLF() {
        self.writeInteger(UInt16(0x0D0A))
    }

    /// Writes `value` in decimal ASCII without allocating a `String`.
    mutating func writeDecimal<Value: BinaryInteger>(_ value: Value) {
        if value == 0 {
            self.writeInteger(UInt8(ascii: "0"))
            return
        }
        var magnitude = UInt64(value.magnitude)
        if value < 0 {
            self.writeInteger(UInt8(ascii: "-"))
        }
        var digits: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                     UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { raw in
            while magnitude > 0 {
                raw[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            }
            for index in stride(from: count - 1, through: 0, by: -1) {
                self.writeInteger(raw[index])
            }
        }
    }
}

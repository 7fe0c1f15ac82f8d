import NIOCore

/// One Redis reply, as the RESP2 protocol carries it.
///
/// A server error at the top of a reply is thrown as `RedisError` by `send`; inside an array
/// (an `EXEC` result, a pipeline's replies) it stays in place as `.error`, because the other
/// elements are still good.
public enum RESPValue: Sendable, Hashable {
    /// A status reply such as `OK` or `QUEUED` (`+…`).
    case simpleString(String)
    /// A binary-safe string (`$…`).
    case bulkString(ByteBuffer)
    /// A signed 64-bit integer (`:…`).
    case integer(Int64)
    /// An array of replies (`*…`).
    case array([RESPValue])
    /// The null bulk string or null array (`$-1`, `*-1`): a missing key, an aborted `EXEC`.
    case null
    /// A server error (`-…`) inside an array, with Redis's message.
    case error(String)

    /// The reply as text: status and bulk strings, integers in decimal; `nil` otherwise.
    public var string: String? {
        switch self {
        case .simpleString(let text):
            return text
        case .bulkString(let buffer):
            return String(buffer: buffer)
        case .integer(let value):
            return String(value)
        case .array, .null, .error:
            return nil
        }
    }

    /// The reply as an integer: integer replies and bulk strings holding a decimal integer.
    public var int: Int64? {
        switch self {
        case .integer(let value):
            return value
        case .bulkString(let buffer):
            return Int64(String(buffer: buffer))
        case .simpleString, .array, .null, .error:
            return nil
        }
    }

    /// The elements of an array reply; `nil` for any other reply.
    public var array: [RESPValue]? {
        if case .array(let elements) = self {
            return elements
        }
        return nil
    }

    /// Whether this is the null reply.
    public var isNull: Bool {
        if case .null = self {
            return true
        }
        return false
    }

    /// Returns the value, or throws `RedisError.server` when it is an in-band error reply.
    public func throwingServerError() throws(RedisError) -> RESPValue {
        if case .error(let message) = self {
            throw RedisError.server(message)
        }
        return self
    }
}

extension RESPValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .simpleString(let text):
            return "+\(text)"
        case .bulkString(let buffer):
            return "\"\(String(buffer: buffer))\""
        case .integer(let value):
            return ":\(value)"
        case .array(let elements):
            return "[" + elements.map(\.description).joined(separator: ", ") + "]"
        case .null:
            return "(nil)"
        case .error(let message):
            return "-\(message)"
        }
    }
}

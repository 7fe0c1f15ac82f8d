/// Base64url (RFC 4648 §5), as JWTs and signed cookies carry their parts: `-` and `_` for `+`
/// and `/`, padding optional on input and never written.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// The bytes `text` encodes, or `nil` when it holds a character outside the alphabet, a
    /// misplaced `=`, or a length no encoding has (4n+1).
    public static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        var end = text.endIndex
        var padding = 0
        while end > text.startIndex, padding < 2, text[text.index(end, offsetBy: -1)] == UInt8(ascii: "=") {
            end = text.index(end, offsetBy: -1)
            padding += 1
        }
        let body = text[text.startIndex..<end]
        if body.count % 4 == 1 || (padding > 0 && (body.count + padding) % 4 != 0) {
            return nil
        }
        var output: [UInt8] = []
        output.reserveCapacity(body.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in body {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "_"): value = 63
            default: return nil
            }
            accumulator = (accumulator << 6) | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // The bits left over must be zero (a canonical encoding), or two texts mean one value.
        if bits > 0, accumulator & ((1 << UInt32(bits)) - 1) != 0 {
            return nil
        }
        return output
    }

    /// `bytes` in base64url without padding.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var output: [UInt8] = []
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in bytes {
            accumulator = (accumulator << 8) | UInt32(byte)
            bits += 8
            while bits >= 6 {
                bits -= 6
                output.append(Self.alphabet[Int((accumulator >> UInt32(bits)) & 63)])
            }
        }
        if bits > 0 {
            output.append(Self.alphabet[Int((accumulator << UInt32(6 - bits)) & 63)])
        }
        return String(decoding: output, as: UTF8.self)
    }
}

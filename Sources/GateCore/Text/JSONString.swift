/// `text` as a JSON string literal, quotes and control characters escaped.
///
/// For the few JSON bodies built by interpolation on hot paths (refusals, the stat log), where
/// a JSON encoder per request would cost more than the request.
public func jsonString(_ text: String) -> String {
    var escaped = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"":
            escaped += "\\\""
        case "\\":
            escaped += "\\\\"
        case "\n":
            escaped += "\\n"
        case "\r":
            escaped += "\\r"
        case "\t":
            escaped += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                escaped += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                escaped.unicodeScalars.append(scalar)
            }
        }
    }
    return escaped + "\""
}

extension Substring {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace, `OWS`).
    func trimmingSpaces() -> Substring {
        let isWhitespace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = self.utf8.firstIndex(where: { !isWhitespace($0) }),
            let last = self.utf8.lastIndex(where: { !isWhitespace($0) })
        else {
            return self[self.endIndex...]
        }
        return self[first..<self.utf8.index(after: last)]
    }
}

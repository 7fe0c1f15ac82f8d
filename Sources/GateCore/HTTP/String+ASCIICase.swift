extension StringProtocol {
    /// Whether this equals `lowercase` (which must be lower-case ASCII) ignoring ASCII case,
    /// without allocating: HTTP field names are compared this way on every request.
    @inlinable
    public func equalsASCIICaseInsensitive(_ lowercase: String) -> Bool {
        self.utf8.equalsASCIICaseInsensitive(lowercase)
    }
}

extension Collection where Element == UInt8 {
    /// Whether these bytes (a field name read in place) equal `lowercase` (lower-case ASCII)
    /// ignoring ASCII case, without allocating.
    @inlinable
    public func equalsASCIICaseInsensitive(_ lowercase: String) -> Bool {
        // Lengths first: most names differ in length, and a native string knows its length.
        guard self.count == lowercase.utf8.count else {
            return false
        }
        var other = lowercase.utf8.makeIterator()
        for byte in self {
            guard let expected = other.next() else {
                return false
            }
            let folded = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            if folded != expected {
                return false
            }
        }
        return other.next() == nil
    }
}

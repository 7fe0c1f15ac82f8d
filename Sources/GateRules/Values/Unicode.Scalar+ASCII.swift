extension Unicode.Scalar {
    /// `A`–`Z`, `a`–`z` or `0`–`9`: the letters and digits names, host names and HTTP tokens
    /// are made of.
    var isASCIILetterOrDigit: Bool {
        ("a"..."z").contains(self) || ("A"..."Z").contains(self) || ("0"..."9").contains(self)
    }
}

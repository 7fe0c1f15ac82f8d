/// The values of a mapping whose keys a reader has checked, looked up by key.
///
/// Only keys the reader allowed are here; the rest were reported as unknown.
struct YAMLFields {
    /// The mapping itself, for diagnostics about a missing key.
    let mapping: YAMLValue
    /// Allowed keys that an unknown key was reported as a misspelling of; a missing key among
    /// them is not reported again.
    let misspelt: Set<String>
    private let values: [String: YAMLValue]

    init(mapping: YAMLValue, values: [String: YAMLValue], misspelt: Set<String>) {
        self.mapping = mapping
        self.values = values
        self.misspelt = misspelt
    }

    /// The value under `key`, or `nil` when the key is absent.
    subscript(key: String) -> YAMLValue? {
        self.values[key]
    }
}

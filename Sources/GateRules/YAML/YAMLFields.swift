/// The values of a mapping whose keys a reader has checked, looked up by key.
///
/// Only keys the reader allowed are here; the rest were reported as unknown.
package struct YAMLFields {
    /// The mapping itself, for diagnostics about a missing key.
    package let mapping: YAMLValue
    /// Allowed keys that an unknown key was reported as a misspelling of; a missing key among
    /// them is not reported again.
    package let misspelt: Set<String>
    private let values: [String: YAMLValue]

    package init(mapping: YAMLValue, values: [String: YAMLValue], misspelt: Set<String>) {
        self.mapping = mapping
        self.values = values
        self.misspelt = misspelt
    }

    /// The value under `key`, or `nil` when the key is absent.
    package subscript(key: String) -> YAMLValue? {
        self.values[key]
    }
}

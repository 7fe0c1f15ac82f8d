/// The key path from a file's root to one value, as diagnostics show it:
/// `listeners[0].tls.certificate`, `upstreams.tickets.backends[2].weight`.
package struct NodePath: Sendable, Hashable, CustomStringConvertible {
    /// The path as shown.
    package let description: String

    /// The whole file.
    package static let root = NodePath(description: "")

    /// The value under `key` of the mapping at this path.
    package func key(_ key: String) -> NodePath {
        NodePath(description: self.description.isEmpty ? key : "\(self.description).\(key)")
    }

    /// The element at `index` (from 0) of the list at this path.
    package func index(_ index: Int) -> NodePath {
        NodePath(description: "\(self.description)[\(index)]")
    }
}

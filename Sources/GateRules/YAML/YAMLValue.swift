import Yams

/// A node of a composed YAML document and the key path that leads to it: what a reader needs
/// to read the value and to say where a problem is.
package struct YAMLValue {
    /// The node, with its line and column (`mark`).
    package let node: Node
    /// Where the node is in the document.
    package let path: NodePath

    /// The line the node starts on, from 1.
    package var line: Int {
        self.node.mark?.line ?? 0
    }

    /// The column the node starts at, from 1.
    package var column: Int {
        self.node.mark?.column ?? 0
    }

    /// The node's YAML type: the tag written, or the one its plain text resolves to (`5` an
    /// integer, `true` a boolean, `~` or nothing null); quoted text is always a string.
    package var tagName: Tag.Name {
        Resolver.default.resolveTag(of: self.node)
    }

    /// Whether the node is a mapping.
    package var isMapping: Bool {
        if case .mapping = self.node {
            return true
        }
        return false
    }

    /// Whether the node is a boolean (`true`, `false`, `on`, `off`, …).
    package var isBoolean: Bool {
        self.tagName == .bool
    }

    /// What kind of value the node is, for "expected …, found …": `a mapping`, `a list`,
    /// `a string`, `an integer`, `a number`, `a boolean`, or `nothing` for an empty value.
    package var kind: String {
        switch self.node {
        case .mapping:
            return "a mapping"
        case .sequence:
            return "a list"
        case .alias:
            return "an alias"
        case .scalar:
            switch self.tagName {
            case .null: return "nothing"
            case .bool: return "a boolean"
            case .int: return "an integer"
            case .float: return "a number"
            default: return "a string"
            }
        }
    }
}

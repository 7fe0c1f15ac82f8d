import Yams

/// Reads one YAML file value by value and keeps a diagnostic for every problem instead of
/// stopping at the first, so a person fixes a file in one round.
///
/// Documents are composed with Yams' `Node` API, so every value keeps its line and column.
/// Every read takes an optional value (absent key → `nil`, nothing reported) and returns `nil`
/// when the value is absent or wrong; wrong values are reported, naming the type or form that
/// was expected. Mappings are read against the keys they may have: any other key is reported
/// with a "did you mean" hint, because a misspelt key silently ignored would leave a default
/// in force that the operator thinks they changed.
package struct YAMLReader {
    /// The file name the diagnostics carry.
    package let file: String
    /// Every problem found so far, in the order found.
    package private(set) var diagnostics: [Diagnostic] = []

    package init(file: String) {
        self.file = file
    }

    /// Where `value` is, to report a problem with it later.
    func location(of value: YAMLValue) -> SourceLocation {
        SourceLocation(file: self.file, line: value.line, column: value.column, path: value.path)
    }

    /// Records a problem with `value`.
    package mutating func report(_ message: String, at value: YAMLValue, hint: String? = nil) {
        self.diagnostics.append(Diagnostic(message, at: self.location(of: value), hint: hint))
    }

    /// Records that `value` is not the `expected` kind of value.
    package mutating func reportType(of value: YAMLValue, expected: String, hint: String? = nil) {
        self.report("expected \(expected), found \(value.kind)", at: value, hint: hint)
    }

    /// The root of the single document in `text`; `nil` for an empty document (nothing is
    /// reported) or for one that is not valid YAML (reported with Yams' line and column).
    package mutating func root(of text: String) -> YAMLValue? {
        do {
            return try Yams.compose(yaml: text).map { YAMLValue(node: $0, path: .root) }
        } catch let error as YamlError {
            self.diagnostics.append(Self.diagnostic(for: error, file: self.file, text: text))
        } catch {
            self.diagnostics.append(Diagnostic(file: self.file, line: 0, column: 0, path: "", message: "not valid YAML: \(error)"))
        }
        return nil
    }

    /// `value` as a mapping whose keys are among `keys`; every other key is reported.
    package mutating func fields(of value: YAMLValue?, keys: [String]) -> YAMLFields? {
        guard let entries = self.entries(of: value), let value else {
            return nil
        }
        var values: [String: YAMLValue] = [:]
        var misspelt: Set<String> = []
        for entry in entries {
            guard keys.contains(entry.name) else {
                self.report(
                    "unknown key '\(entry.name)'",
                    at: entry.key,
                    hint: SpellingSuggestion.hint(for: entry.name, among: keys, known: "known keys")
                )
                if let closest = SpellingSuggestion.closest(to: entry.name, among: keys) {
                    misspelt.insert(closest)
                }
                continue
            }
            values[entry.name] = entry.value
        }
        return YAMLFields(mapping: value, values: values, misspelt: misspelt)
    }

    /// `value` as a mapping with keys of one's choosing (upstream names), in file order; a key
    /// that is not a plain name (a list, a mapping, nothing) is reported and left out.
    package mutating func entries(of value: YAMLValue?) -> [(name: String, key: YAMLValue, value: YAMLValue)]? {
        guard let value else {
            return nil
        }
        guard case .mapping(let mapping) = value.node else {
            self.reportType(of: value, expected: "a mapping of keys to values")
            return nil
        }
        var entries: [(name: String, key: YAMLValue, value: YAMLValue)] = []
        for (keyNode, valueNode) in mapping {
            let key = YAMLValue(node: keyNode, path: value.path)
            guard case .scalar(let scalar) = keyNode, !scalar.string.isEmpty, key.tagName != .null else {
                self.report("a key must be a name, found \(key.kind)", at: key)
                continue
            }
            let path = value.path.key(scalar.string)
            entries.append((scalar.string, YAMLValue(node: keyNode, path: path), YAMLValue(node: valueNode, path: path)))
        }
        return entries
    }

    /// `value` as a list, each element with its index in the path.
    package mutating func elements(of value: YAMLValue?) -> [YAMLValue]? {
        guard let value else {
            return nil
        }
        guard case .sequence(let sequence) = value.node else {
            self.reportType(of: value, expected: "a list", hint: "write one '- ' item per line, or [a, b]")
            return nil
        }
        return sequence.enumerated().map { YAMLValue(node: $0.element, path: value.path.index($0.offset)) }
    }

    /// The value under `key`, reported as missing when it is absent (unless a misspelling of it
    /// was reported already).
    package mutating func required(_ key: String, in fields: YAMLFields?) -> YAMLValue? {
        guard let fields else {
            return nil
        }
        guard let value = fields[key] else {
            if !fields.misspelt.contains(key) {
                self.report("required key '\(key)' is missing", at: fields.mapping)
            }
            return nil
        }
        return value
    }

    /// One diagnostic for a document Yams could not compose.
    private static func diagnostic(for error: YamlError, file: String, text: String) -> Diagnostic {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _), .composer(let context, let problem, let mark, _):
            let line = text.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(mark.line - 1).first ?? ""
            let hint = line.prefix { $0 == " " || $0 == "\t" }.contains("\t")
                ? "indent with spaces: YAML does not allow tabs"
                : "check the indentation and the ':' after each key near here"
            let message = "not valid YAML: \(problem)" + (context.map { " (\($0.text) at line \($0.mark.line))" } ?? "")
            return Diagnostic(file: file, line: mark.line, column: mark.column, path: "", message: message, hint: hint)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return Diagnostic(
                file: file,
                line: context.mark.line,
                column: context.mark.column,
                path: "",
                message: "duplicate key \(keys) in one mapping",
                hint: "a key may appear once; keep one of them"
            )
        case .reader(let problem, let offset, _, _):
            let before = offset.map { text.prefix($0) } ?? ""
            let line = before.count { $0 == "\n" } + 1
            let column = before.count - (before.lastIndex(of: "\n").map { before.distance(from: before.startIndex, to: $0) + 1 } ?? 0) + 1
            return Diagnostic(file: file, line: line, column: column, path: "", message: "not readable as YAML: \(problem)", hint: "save the file as UTF-8 text")
        default:
            return Diagnostic(file: file, line: 0, column: 0, path: "", message: "not valid YAML: \(error)")
        }
    }
}

/// The second stage: checks what only all rule files together show (see `RuleFile`), and
/// reports every problem.
///
/// - An upstream is defined once across all files (both places are named).
/// - A route names an upstream that is defined ("did you mean" when one is close).
/// - A route is not made unreachable by an earlier one that matches everything it would.
/// - The set routes somewhere: at least one upstream, and routes when there are several
///   (with exactly one and no routes, everything goes to it).
/// - A list file an `allow:`/`deny:` names is there.
/// - A window is defined once; a route names only defined windows.
/// - `identity:` is written at most once, and is written when a route limits requests per
///   account (`in_flight`, on by default for `purchase: true`).
enum RulesValidator {
    /// A section that may be written once across all files: each place after the first is a
    /// diagnostic naming the first.
    private static func writtenOnce(_ section: String, at places: [SourceLocation]) -> [Diagnostic] {
        places.dropFirst().map { place in
            Diagnostic(
                "\(section) is already defined at \(places[0])",
                at: place,
                hint: "write the \(section): section once across all rule files"
            )
        }
    }

    /// Every problem with `files` taken together; empty when they can be compiled.
    /// `decodedCleanly` says whether decoding found no problem: when it did, a file may have
    /// been unreadable as YAML, so whether the set routes anywhere is left for the next run.
    static func validate(_ files: [RuleFile], lists: Set<String> = [], decodedCleanly: Bool) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        for entry in files.flatMap({ $0.allow + $0.deny }) {
            if case .file(let name, let location) = entry, !lists.contains(name) {
                diagnostics.append(Diagnostic(
                    "no list file '\(name)' in the rules directory",
                    at: location,
                    hint: SpellingSuggestion.hint(for: name, among: lists.sorted(), known: "list files")
                ))
            }
        }
        var upstreams: [String: SourceLocation] = [:]
        for entry in files.flatMap(\.upstreams) {
            let name = entry.name
            if let first = upstreams[name] {
                diagnostics.append(Diagnostic(
                    "upstream '\(name)' is already defined at \(first)",
                    at: entry.location,
                    hint: "define each upstream once across all rule files; rename or remove one of them"
                ))
            } else {
                upstreams[name] = entry.location
            }
        }
        let names = upstreams.keys.sorted()
        let routes = files.flatMap(\.routes)
        for case let (name, location)? in routes.map(\.upstream) where upstreams[name] == nil {
            diagnostics.append(Diagnostic(
                "no upstream is named '\(name)'",
                at: location,
                hint: SpellingSuggestion.hint(for: name, among: names, known: "upstreams")
            ))
        }
        var windows: [String: RuleFile.WindowEntry] = [:]
        for entry in files.flatMap(\.windows) {
            if let first = windows[entry.name] {
                diagnostics.append(Diagnostic(
                    "window '\(entry.name)' is already defined at \(first.location)",
                    at: entry.location,
                    hint: "define each window once across all rule files; rename or remove one of them"
                ))
            } else {
                windows[entry.name] = entry
            }
        }
        let windowNames = windows.keys.sorted()
        for route in routes {
            for (name, location) in route.windows where windows[name] == nil {
                diagnostics.append(Diagnostic(
                    "no window is named '\(name)'",
                    at: location,
                    hint: SpellingSuggestion.hint(for: name, among: windowNames, known: "windows")
                ))
            }
        }
        diagnostics += Self.writtenOnce("passes", at: files.compactMap { $0.passes?.location })
        let identities = files.compactMap(\.identity)
        diagnostics += Self.writtenOnce("identity", at: identities.map(\.location))
        let decoded = routes.compactMap { entry in entry.route.map { (route: $0, location: entry.location) } }
        if identities.isEmpty {
            for entry in files.flatMap(\.windows) where entry.rule?.key.needsAccount == true {
                diagnostics.append(Diagnostic(
                    "window '\(entry.name)' counts per account, but no rule file says where the account is",
                    at: entry.location,
                    hint: "add an identity: section (header: X-Account-Id), or count per ip"
                ))
            }
            for entry in decoded where entry.route.inFlight != nil {
                diagnostics.append(Diagnostic(
                    "this route allows one request in flight per account, but no rule file says where the account is",
                    at: entry.location,
                    hint: "add an identity: section (header: X-Account-Id), or write in_flight: false on the route"
                ))
            }
        }
        for (index, entry) in decoded.enumerated() {
            if let earlier = decoded[..<index].first(where: { $0.route.covers(entry.route) }) {
                diagnostics.append(Diagnostic(
                    "this route never matches: the route at \(earlier.location) (\(earlier.location.path)) matches every request it would, and comes first",
                    at: entry.location,
                    hint: "move this route above that one, or remove it"
                ))
            }
        }
        guard decodedCleanly else {
            return diagnostics
        }
        if upstreams.isEmpty {
            diagnostics.append(Diagnostic(
                file: "",
                line: 0,
                column: 0,
                path: "upstreams",
                message: "no upstream is defined in any rule file",
                hint: "add an upstreams: section with at least one backend"
            ))
        } else if upstreams.count > 1 && routes.isEmpty {
            diagnostics.append(Diagnostic(
                file: "",
                line: 0,
                column: 0,
                path: "routes",
                message: "\(upstreams.count) upstreams but no routes, so no request would reach any",
                hint: "add routes: that send requests to \(names.joined(separator: ", ")) (with one upstream and no routes, everything goes to it)"
            ))
        }
        return diagnostics
    }
}

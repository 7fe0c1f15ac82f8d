import GateCore

/// One rule file as decoded: the first of the three stages (decode → validate → compile).
///
/// The stages split the checks by how much they need to see:
/// - decoding (`RuleFileDecoder`) sees one file, one entry at a time: keys, types, forms,
///   ranges, and what must agree within one entry (a health check's timeout and interval, the
///   backends of one upstream);
/// - validating (`RulesValidator`) sees every file at once: names defined twice, references to
///   names that are not defined, routes that can never match, a set that routes nowhere;
/// - compiling (`RuleSet`) cannot fail: it freezes what passed.
///
/// Entries keep where they were written, so the later stages can still point at the line.
/// New kinds of rule (the anti-cheat policies) add a section here and their checks to each
/// stage.
struct RuleFile {
    /// An upstream's name, where it is written, and the upstream when its body decoded
    /// without a problem (the name still counts for the checks across files when it did not,
    /// so one typo does not also turn every route to it into "no such upstream").
    struct UpstreamEntry {
        let name: String
        let location: SourceLocation
        let upstream: Upstream?
    }

    /// A route as written: where it is, the upstream it names (when it names one), and the
    /// route when it decoded without a problem (its upstream is still checked when it did not).
    struct RouteEntry {
        let location: SourceLocation
        let upstream: (name: String, location: SourceLocation)?
        let route: Route?
        /// The window names it lists, with where each is written.
        var windows: [(name: String, location: SourceLocation)] = []
    }

    /// The `identity:` section as written: where it is, and the identity when it decoded
    /// without a problem.
    struct IdentityEntry {
        let location: SourceLocation
        var identity: AccountIdentity?
        /// The key files a signed form names (resolved against the rules directory when the
        /// files are compiled together), with where each is written.
        var keyFiles: [(name: String, location: SourceLocation)] = []
    }

    /// The `passes:` section: the key files passes are signed with (the first signs), where.
    struct PassesEntry {
        let location: SourceLocation
        var keyFiles: [(name: String, location: SourceLocation)]
        /// Filled when the files are compiled together.
        var keyring: PassToken.Keyring?
    }

    /// A window as written: its name, where, and the rule when it decoded cleanly.
    struct WindowEntry {
        let name: String
        let location: SourceLocation
        let rule: WindowRule?
    }

    /// An entry of an `allow:` or `deny:` list: a network, or a `*.list` file of them.
    enum ListEntry {
        case block(CIDRBlock)
        case file(name: String, location: SourceLocation)
    }

    /// The file name within the rules directory.
    let name: String
    /// Client networks never limited per address or account (`allow:`).
    var allow: [ListEntry] = []
    /// Client networks refused outright (`deny:`).
    var deny: [ListEntry] = []
    /// The `windows:` entries, in file order.
    var windows: [WindowEntry] = []
    /// The file's `identity:` section, if it has one (at most one across all files).
    var identity: IdentityEntry?
    /// The file's `passes:` section, if it has one (at most one across all files).
    var passes: PassesEntry?
    /// The networks whose `X-Forwarded-For` and PROXY headers are believed.
    var trustedProxies: [CIDRBlock] = []
    /// The upstreams, in file order; every name written, valid or not.
    var upstreams: [UpstreamEntry] = []
    /// The routes, in file order; every route written, valid or not.
    var routes: [RouteEntry] = []
}

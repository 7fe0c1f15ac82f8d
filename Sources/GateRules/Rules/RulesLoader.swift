import Foundation
import GateCore

/// Reads a directory of rule files and compiles them into a `RuleSet`, or says everything that
/// is wrong with them.
///
/// The files are every `*.yaml` and `*.yml` directly in the directory (hidden files and
/// subdirectories aside), read in file-name order and merged, plus the `*.list` files the
/// `allow:` and `deny:` lists name (one network per line, `#` comments) and the key files an
/// `identity:` names (`*.key` HMAC secrets, `*.pem` P-256 public keys): trusted proxies add up, each
/// upstream is defined in one file, routes are tried in file order. Stages: decode each file
/// (`RuleFileDecoder`), validate them together (`RulesValidator`), compile (`RuleSet`); a
/// problem at any stage means no rule set, so a bad edit never replaces good rules.
public enum RulesLoader {
    /// Reads and compiles the rule files in `directory`. A missing directory, or one without
    /// rule files, is an error. Diagnostics name each file as `directory/name`.
    public static func load(directory: String) throws(RulesError) -> RuleSet {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw Self.error(directory, "no such directory", hint: "give the directory that holds the *.yaml rule files")
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw Self.error(directory, "cannot be listed", hint: "check the directory's permissions")
        }
        let ruleFiles = names.filter { name in
            var isDirectory: ObjCBool = false
            return Self.isRulesFile(name)
                && FileManager.default.fileExists(atPath: TextFile.resolve(name, against: directory), isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var files: [(name: String, text: String)] = []
        var diagnostics: [Diagnostic] = []
        for name in ruleFiles {
            do {
                files.append((name, try TextFile.read(TextFile.resolve(name, against: directory))))
            } catch {
                diagnostics.append(error.diagnostic)
            }
        }
        guard files.contains(where: { Self.isRuleFile($0.name) }) || !diagnostics.isEmpty else {
            throw Self.error(directory, "no *.yaml files in \(directory)", hint: "add a rule file such as upstreams.yaml")
        }
        guard diagnostics.isEmpty else {
            throw RulesError(diagnostics: diagnostics)
        }
        do {
            return try self.compile(files: files)
        } catch {
            throw RulesError(diagnostics: error.diagnostics.map { diagnostic in
                var diagnostic = diagnostic
                diagnostic.file = diagnostic.file.isEmpty ? directory : TextFile.resolve(diagnostic.file, against: directory)
                return diagnostic
            })
        }
    }

    /// Whether a file of the rules directory is read with the rules (and watched for changes):
    /// rule files, list files and key files; hidden files never.
    public static func isRulesFile(_ name: String) -> Bool {
        !name.hasPrefix(".") && (Self.isRuleFile(name) || name.hasSuffix(".list") || Self.isKeyFile(name))
    }

    static func isKeyFile(_ name: String) -> Bool {
        name.hasSuffix(".key") || name.hasSuffix(".pem")
    }

    static func isRuleFile(_ name: String) -> Bool {
        name.hasSuffix(".yaml") || name.hasSuffix(".yml")
    }

    /// Compiles rule files given as names and texts, in the order given (the version depends
    /// on it). Diagnostics name each file by its name; those about the set as a whole have an
    /// empty file name.
    /// `*.list` files among them are address lists (one network per line, `#` comments); `*.key`
    /// and `*.pem` files are keys, used when an `identity:` names them.
    public static func compile(files: [(name: String, text: String)]) throws(RulesError) -> RuleSet {
        var decoded: [RuleFile] = []
        var lists: [String: [CIDRBlock]] = [:]
        var keyTexts: [String: String] = [:]
        var diagnostics: [Diagnostic] = []
        for file in files {
            if file.name.hasSuffix(".list") {
                lists[file.name] = Self.addressList(file.text, name: file.name, diagnostics: &diagnostics)
                continue
            }
            if Self.isKeyFile(file.name) {
                keyTexts[file.name] = file.text
                continue
            }
            var decoder = RuleFileDecoder(name: file.name)
            decoded.append(decoder.decode(file.text))
            diagnostics += decoder.diagnostics
        }
        for index in decoded.indices {
            if let entry = decoded[index].identity {
                decoded[index].identity = Self.resolvingKeys(of: entry, in: keyTexts, diagnostics: &diagnostics)
            }
            if var passes = decoded[index].passes {
                passes.keyring = Self.passKeyring(passes.keyFiles, in: keyTexts, diagnostics: &diagnostics)
                decoded[index].passes = passes
            }
        }
        diagnostics += RulesValidator.validate(decoded, lists: Set(lists.keys), decodedCleanly: diagnostics.isEmpty)
        guard diagnostics.isEmpty else {
            throw RulesError(diagnostics: diagnostics.sortedByPlace())
        }
        return RuleSet(files: decoded, lists: lists, version: RuleSet.version(of: files))
    }

    /// The pass keyring of `passes: {keys: [...]}`: each file's secret under its name without
    /// `.key`; the first signs, all verify.
    static func passKeyring(_ files: [(name: String, location: SourceLocation)], in texts: [String: String], diagnostics: inout [Diagnostic]) -> PassToken.Keyring? {
        var keys: [(id: String, secret: [UInt8])] = []
        for (name, location) in files {
            let id = String(name.dropLast(".key".count))
            guard !id.contains("."), !id.isEmpty else {
                diagnostics.append(Diagnostic(
                    "'\(name)': a pass key's id is its file name without .key, and may hold no dot",
                    at: location, hint: "rename it, e.g. pass-2026.key"
                ))
                continue
            }
            guard let secret = Self.secret(name, at: location, in: texts, diagnostics: &diagnostics) else {
                continue
            }
            keys.append((id, secret))
        }
        guard let first = keys.first, keys.count == files.count else {
            return nil
        }
        return PassToken.Keyring(current: first.id, keys: Dictionary(keys.map { ($0.id, $0.secret) }, uniquingKeysWith: { first, _ in first }))
    }

    /// The text of key file `name`, or a diagnostic at `location` when the directory has none.
    static func keyText(_ name: String, at location: SourceLocation, in texts: [String: String], diagnostics: inout [Diagnostic]) -> String? {
        guard let text = texts[name] else {
            diagnostics.append(Diagnostic(
                "no key file '\(name)' in the rules directory",
                at: location,
                hint: SpellingSuggestion.hint(for: name, among: texts.keys.sorted(), known: "key files")
            ))
            return nil
        }
        return text
    }

    /// The secret of key file `name` (its text without surrounding white space, at least
    /// 32 bytes), or a diagnostic at `location`.
    static func secret(_ name: String, at location: SourceLocation, in texts: [String: String], diagnostics: inout [Diagnostic]) -> [UInt8]? {
        guard let text = Self.keyText(name, at: location, in: texts, diagnostics: &diagnostics) else {
            return nil
        }
        let secret = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        guard secret.count >= AccountTokenKey.minimumSecretBytes else {
            diagnostics.append(Diagnostic(
                "'\(name)' holds \(secret.count) bytes; an HMAC-SHA256 secret needs at least \(AccountTokenKey.minimumSecretBytes)",
                at: location,
                hint: "write a longer secret, e.g. openssl rand -base64 48 > \(name)"
            ))
            return nil
        }
        return secret
    }

    /// `entry` with the keys its files hold put into its verifier; each missing or unusable key
    /// file is a diagnostic at the place that names it.
    static func resolvingKeys(of entry: RuleFile.IdentityEntry, in texts: [String: String], diagnostics: inout [Diagnostic]) -> RuleFile.IdentityEntry {
        guard var identity = entry.identity, !entry.keyFiles.isEmpty else {
            return entry
        }
        var keys: [AccountTokenKey] = []
        for (name, location) in entry.keyFiles {
            if name.hasSuffix(".pem") {
                guard let text = Self.keyText(name, at: location, in: texts, diagnostics: &diagnostics) else {
                    continue
                }
                do {
                    keys.append(try AccountTokenKey.p256(pem: text, name: name))
                } catch {
                    diagnostics.append(Diagnostic(
                        "'\(name)' is not a P-256 public key in PEM form (\(error))",
                        at: location,
                        hint: "export the ES256 signer's public key: openssl ec -in signer.pem -pubout -out \(name)"
                    ))
                }
            } else if let secret = Self.secret(name, at: location, in: texts, diagnostics: &diagnostics) {
                keys.append(AccountTokenKey.hmac(secret: secret, name: name))
            }
        }
        switch identity.source {
        case .header:
            break
        case .jwt(var verifier, let cookie):
            verifier.keys = keys
            identity.source = .jwt(verifier, cookie: cookie)
        case .signedCookie(var cookie, let name):
            cookie.keys = keys
            identity.source = .signedCookie(cookie, cookie: name)
        }
        var resolved = entry
        resolved.identity = identity
        return resolved
    }

    /// The networks of a `*.list` file; each bad line is a diagnostic naming its line.
    static func addressList(_ text: String, name: String, diagnostics: inout [Diagnostic]) -> [CIDRBlock] {
        var blocks: [CIDRBlock] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let entry = (line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmingCharacters(in: .whitespaces)
            guard !entry.isEmpty else {
                continue
            }
            do {
                blocks.append(try CIDRBlock(entry))
            } catch {
                diagnostics.append(Diagnostic(
                    file: name, line: index + 1, column: 1, path: "",
                    message: "'\(entry.prefix(64))' is not a network: \(error)",
                    hint: "one address or CIDR block per line, e.g. 203.0.113.0/24; # starts a comment"
                ))
            }
        }
        return blocks
    }

    private static func error(_ directory: String, _ message: String, hint: String) -> RulesError {
        RulesError(diagnostics: [Diagnostic(file: directory, line: 0, column: 0, path: "", message: message, hint: hint)])
    }
}

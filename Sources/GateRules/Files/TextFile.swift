import Foundation

/// Reading a configuration or rule file whole, as UTF-8 text.
enum TextFile {
    /// Why a file could not be read, as a diagnostic naming it.
    struct ReadError: Error {
        /// The diagnostic, with no line.
        let diagnostic: Diagnostic
    }

    /// The text of the file at `path`.
    static func read(_ path: String) throws(ReadError) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw Self.error(path, "no such file", hint: "check the path")
        }
        guard !isDirectory.boolValue else {
            throw Self.error(path, "is a directory, not a file", hint: nil)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Self.error(path, "cannot be read", hint: "check the file's permissions")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw Self.error(path, "is not UTF-8 text", hint: "save the file as UTF-8")
        }
        return text
    }

    /// The directory part of `path` (`""` for a bare file name), for resolving relative paths.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else {
            return ""
        }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `path` as it is when absolute or when `base` is empty, else `base/path`.
    static func resolve(_ path: String, against base: String) -> String {
        guard !path.hasPrefix("/"), !base.isEmpty else {
            return path
        }
        return base.hasSuffix("/") ? base + path : "\(base)/\(path)"
    }

    private static func error(_ path: String, _ message: String, hint: String?) -> ReadError {
        ReadError(diagnostic: Diagnostic(file: path, line: 0, column: 0, path: "", message: message, hint: hint))
    }
}

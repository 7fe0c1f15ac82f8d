import Foundation

/// What the watchers compare to notice that a file changed without reading it: its size and
/// modification time (a missing or unreadable file has its own stamp, so it counts as a change).
enum FileStamp {
    /// `name:size:mtime` of the file at `path`, labelled `name`.
    static func of(_ path: String, as name: String? = nil) -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
        let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(name ?? path):\(size):\(modified)"
    }
}

/// Checks `condition` every `interval` until it holds or `attempts` run out; `true` if it held.
///
/// For waiting on something another process or thread does (a reconnect, a close) without a
/// timing assertion: the bound only keeps a broken build from hanging.
public func eventually(
    attempts: Int = 250,
    every interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async throws -> Bool {
    for attempt in 0..<attempts {
        if try await condition() {
            return true
        }
        if attempt < attempts - 1 {
            try await Task.sleep(for: interval)
        }
    }
    return false
}

import Foundation

/// Runs the `spikegate` executable built beside the test bundle and captures what it prints.
public enum SpikegateBinary {
    /// What one run printed and how it ended.
    public struct Output: Sendable {
        public let status: Int32
        public let standardOutput: String
        public let standardError: String
    }

    /// The built `spikegate` next to the running test binary.
    public static func path() throws -> String {
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var folder = testBinary.deletingLastPathComponent()
        // On Linux the runner is `<build>/<Package>PackageTests.xctest`; elsewhere a bundle inside it.
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("spikegate").path
            if FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
            folder = folder.deletingLastPathComponent()
        }
        throw TestSupportError("the spikegate executable was not built beside \(testBinary.path); run `swift build --build-tests`")
    }

    /// Runs `spikegate arguments…` to completion (bounded by `timeout`).
    public static func run(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try self.path())
        process.arguments = arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                process.waitUntilExit()
                throw TestSupportError("spikegate \(arguments.joined(separator: " ")) ran past \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let out = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return Output(status: process.terminationStatus, standardOutput: out, standardError: err)
    }
}

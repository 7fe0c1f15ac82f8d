import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One `Process.run()` at a time: swift-corelibs-foundation's launch crashed (in `memcpy`
/// inside `Process.run`) when parallel tests started programs at the same moment.
private let launching = Mutex(())

/// Starts `process`, never while another test starts one.
func launch(_ process: Process) throws {
    try launching.withLock { _ in try process.run() }
}

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
        try await runProgram(try self.path(), arguments, timeout: timeout)
    }
}

/// Runs `executable arguments…` (a path, or a name looked up in `/usr/bin`, `/bin`, `/usr/sbin` and `/sbin`) to
/// completion, bounded by `timeout`, and captures what it prints. For small outputs (both
/// pipes are read after the exit).
public func runProgram(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(60)) async throws -> SpikegateBinary.Output {
    let path = programPath(executable)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardOutput = stdout
    process.standardError = stderr
    process.standardInput = FileHandle.nullDevice
    try launch(process)
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
        if ContinuousClock.now > deadline {
            process.terminate()
            process.waitUntilExit()
            throw TestSupportError("\(executable) \(arguments.joined(separator: " ")) ran past \(timeout)")
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    let out = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let err = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return SpikegateBinary.Output(status: process.terminationStatus, standardOutput: out, standardError: err)
}

/// `executable` if it is a path, else where it is in `/usr/bin`, `/bin`, `/usr/sbin` or `/sbin`.
func programPath(_ executable: String) -> String {
    executable.contains("/") ? executable : ["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map { "\($0)/\(executable)" }.first {
        FileManager.default.isExecutableFile(atPath: $0)
    } ?? executable
}

/// A `spikegate` process left running (a ticket node, later a gateway), stopped by its PID.
public final class SpikegateProcess: @unchecked Sendable {
    private let process: Process
    private let output: URL

    /// The process id.
    public var pid: Int32 {
        self.process.processIdentifier
    }

    /// Whether it is still running.
    public var isRunning: Bool {
        self.process.isRunning
    }

    /// What it printed so far (standard output and error together).
    public var printed: String {
        (try? String(contentsOf: self.output, encoding: .utf8)) ?? ""
    }

    /// Starts `spikegate arguments…`; its output goes to a temporary file.
    public static func start(_ arguments: [String]) throws -> SpikegateProcess {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("spikegate-\(UUID().uuidString.prefix(8)).log")
        let process = try launchProcess(executable: try SpikegateBinary.path(), arguments: arguments, output: output)
        return SpikegateProcess(process: process, output: output)
    }

    /// Starts another program (`redis-server`, …) the same way, stopped the same way.
    public static func launch(_ program: String, _ arguments: [String]) throws -> SpikegateProcess {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("\(program)-\(UUID().uuidString.prefix(8)).log")
        let process = try launchProcess(executable: programPath(program), arguments: arguments, output: output)
        return SpikegateProcess(process: process, output: output)
    }

    private init(process: Process, output: URL) {
        self.process = process
        self.output = output
    }

    /// Sends `signal` (e.g. `SIGTERM` to ask for a graceful stop).
    public func send(signal: Int32) {
        if self.process.isRunning {
            Glibc.kill(self.process.processIdentifier, signal)
        }
    }

    /// Waits up to `timeout` for the process to end; its exit status, or `nil` if still running.
    public func waitForExit(timeout: Duration) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while self.process.isRunning {
            if ContinuousClock.now > deadline {
                return nil
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return self.process.terminationStatus
    }

    /// `SIGKILL`, then waits for it (a crash).
    public func kill() {
        if self.process.isRunning {
            Glibc.kill(self.process.processIdentifier, SIGKILL)
        }
        GateTestSupport.waitForExit(of: self.process)
        try? FileManager.default.removeItem(at: self.output)
    }

    deinit {
        if self.process.isRunning {
            Glibc.kill(self.process.processIdentifier, SIGKILL)
            GateTestSupport.waitForExit(of: self.process)
        }
    }
}

/// Starts `executable arguments…` with standard output and error going to (a new) `output` and
/// no standard input.
func launchProcess(executable: String, arguments: [String], output: URL) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    _ = FileManager.default.createFile(atPath: output.path, contents: nil)
    let handle = try FileHandle(forWritingTo: output)
    process.standardOutput = handle
    process.standardError = handle
    process.standardInput = FileHandle.nullDevice
    try launch(process)
    return process
}

import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real `redis-server` started for a test: on a free loopback port or a unix socket, in its
/// own temporary directory, with persistence off, stopped by its PID.
///
/// `start` returns once the server answers; `kill` is a crash; `restart` starts a new server on
/// the same port or socket; `stop` ends it and removes its directory.
///
/// Every stop is `SIGKILL`: a child spawned from the test process inherits its blocked-signal
/// mask, in which `SIGTERM` is blocked, so `redis-server` would never see it. Persistence is off,
/// so nothing is lost.
/// Set `SPIKEGATE_REDIS_SERVER` to use another binary.
public final class RedisServerProcess: @unchecked Sendable {
    /// How the server listens.
    public enum Listener: Sendable {
        /// A free TCP port on 127.0.0.1.
        case tcp
        /// A unix socket in the server's temporary directory.
        case unixSocket
    }

    public let listener: Listener
    /// The TCP port (`tcp` listener only).
    public private(set) var port: Int
    /// The unix socket path (`unixSocket` listener only).
    public let socketPath: String
    /// The server's working directory, removed on `stop`.
    public let directory: URL
    private let extraArguments: [String]
    /// A configuration file read first (the options given here override it).
    private let configFile: String?
    private let lock = NSLock()
    private var process: Process?

    /// The PID of the running server, or `nil` once stopped.
    public var pid: Int32? {
        self.lock.withLock { self.process.map(\.processIdentifier) }
    }

    /// A `redis://` or `unix://` URL for the server (no credentials).
    public var url: String {
        switch self.listener {
        case .tcp:
            return "redis://127.0.0.1:\(self.port)"
        case .unixSocket:
            return "unix://\(self.socketPath)"
        }
    }

    private init(listener: Listener, port: Int, directory: URL, extraArguments: [String], configFile: String?) {
        self.configFile = configFile
        self.listener = listener
        self.port = port
        self.directory = directory
        self.socketPath = directory.appendingPathComponent("redis.sock").path
        self.extraArguments = extraArguments
    }

    /// Starts a server and waits (up to 10 s) until it answers.
    ///
    /// - Parameters:
    ///   - configFile: a `redis.conf` to read first; its persistence settings then stand (the
    ///     server still writes only in its temporary directory).
    ///   - arguments: extra `redis-server` options, e.g. `["--requirepass", "secret"]`.
    public static func start(_ listener: Listener = .tcp, configFile: String? = nil, arguments: [String] = []) async throws -> RedisServerProcess {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("spikegate-redis-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // A cluster node also listens on its port + 10000 (the cluster bus).
        let clusterNode = arguments.contains("--cluster-enabled")
        let port = listener == .tcp ? try freeLoopbackPort(alsoFree: clusterNode ? 10_000 : nil) : 0
        let server = RedisServerProcess(listener: listener, port: port, directory: directory, extraArguments: arguments, configFile: configFile)
        // A port free a moment ago can be taken before redis-server binds it (tests run in
        // parallel); try a few ports before giving up.
        var attempt = 1
        while true {
            do {
                try await server.launch()
                return server
            } catch let error as TestSupportError where error.description.contains("Address already in use") && attempt < 5 {
                attempt += 1
                server.port = try freeLoopbackPort(alsoFree: clusterNode ? 10_000 : nil)
            } catch {
                try? FileManager.default.removeItem(at: directory)
                throw error
            }
        }
    }

    static func binary() throws -> String {
        if let override = ProcessInfo.processInfo.environment["SPIKEGATE_REDIS_SERVER"] {
            return override
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") + ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
            let candidate = "\(folder)/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
        }
        throw TestSupportError("redis-server not found on PATH; run `make deps` (installs Debian's redis-server)")
    }

    private func launch() async throws {
        var arguments = self.configFile.map { [$0] } ?? ["--save", "", "--appendonly", "no"]
        arguments += ["--daemonize", "no", "--dir", self.directory.path, "--enable-debug-command", "yes"]
        switch self.listener {
        case .tcp:
            arguments += ["--port", "\(self.port)", "--bind", "127.0.0.1"]
        case .unixSocket:
            arguments += ["--port", "0", "--unixsocket", self.socketPath, "--unixsocketperm", "700"]
        }
        arguments += self.extraArguments
        let logURL = self.directory.appendingPathComponent("redis.log")
        let process = try launchProcess(executable: try Self.binary(), arguments: arguments, output: logURL)
        self.lock.withLock { self.process = process }

        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if !process.isRunning {
                let output = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
                throw TestSupportError("redis-server exited at start (status \(process.terminationStatus)):\n\(output)")
            }
            if self.answers() {
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        self.kill()
        throw TestSupportError("redis-server did not answer within 10 s at \(self.url)")
    }

    /// Whether the server answers a `PING` with any RESP reply (an auth error counts).
    public func answers() -> Bool {
        let fd: Int32
        switch self.listener {
        case .tcp:
            fd = connectTCP(port: self.port)
        case .unixSocket:
            fd = connectUnix(path: self.socketPath)
        }
        guard fd >= 0 else {
            return false
        }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let ping = Array("PING\r\n".utf8)
        guard write(fd, ping, ping.count) == ping.count else {
            return false
        }
        var reply = [UInt8](repeating: 0, count: 64)
        let count = read(fd, &reply, reply.count)
        return count > 0 && (reply[0] == UInt8(ascii: "+") || reply[0] == UInt8(ascii: "-"))
    }

    /// Sends `SIGKILL` and waits for the process to end (a crash: no clean shutdown).
    public func kill() {
        self.signal(SIGKILL)
    }

    /// Ends the server (`SIGKILL`, see above), waits for it and removes its directory.
    public func stop() {
        self.signal(SIGKILL)
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// Starts the server again on the same port or socket (after `kill`).
    public func restart() async throws {
        self.signal(SIGKILL)
        if self.listener == .unixSocket {
            try? FileManager.default.removeItem(atPath: self.socketPath)
        }
        try await self.launch()
    }

    private func signal(_ signal: Int32) {
        let process = self.lock.withLock { () -> Process? in
            defer { self.process = nil }
            return self.process
        }
        guard let process else {
            return
        }
        if process.isRunning {
            Glibc.kill(process.processIdentifier, signal)
        }
        waitForExit(of: process)
    }

    deinit {
        if let process, process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
            waitForExit(of: process)
        }
    }
}

/// Runs `body` with a fresh `redis-server`, stopping it afterwards whatever happens.
public func withRedisServer<Result>(
    _ listener: RedisServerProcess.Listener = .tcp,
    configFile: String? = nil,
    arguments: [String] = [],
    _ body: (RedisServerProcess) async throws -> Result
) async throws -> Result {
    let server = try await RedisServerProcess.start(listener, configFile: configFile, arguments: arguments)
    do {
        let result = try await body(server)
        server.stop()
        return result
    } catch {
        server.stop()
        throw error
    }
}

/// A failure of the test support itself (a missing binary, a server that would not start).
public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// Ports this process has handed out: never twice, so two parallel tests cannot pick the same
/// one, nor a new backend take the port of another test's stopped one (whose gateway may still
/// be sending there).
private let handedOut = Mutex<Set<Int>>([])

/// A loopback port nothing listens on right now, below Linux's ephemeral range (32768+), so
/// the outgoing connections of parallel tests cannot take it before the server binds it.
public func freeLoopbackPort() throws -> Int {
    try freeLoopbackPort(alsoFree: nil)
}

/// A free loopback port whose neighbour `offset` above is free too (a Redis Cluster node's bus
/// port), both handed out.
public func freeLoopbackPort(alsoFree offset: Int?) throws -> Int {
    for _ in 0..<200 {
        let candidate = Int.random(in: 20_000..<32_000)
        let ports = [candidate] + (offset.map { [candidate + $0] } ?? [])
        guard handedOut.withLock({ taken in
            guard ports.allSatisfy({ !taken.contains($0) }) else {
                return false
            }
            taken.formUnion(ports)
            return true
        }) else {
            continue
        }
        if ports.allSatisfy({ canBind(port: $0) }) {
            return candidate
        }
    }
    throw TestSupportError("no free loopback port found in 20000..<32000")
}

private func canBind(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else {
        return false
    }
    defer { close(fd) }
    var address = loopbackAddress(port: port)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return bound == 0
}

private func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    return address
}

private func connectTCP(port: Int) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else {
        return -1
    }
    var address = loopbackAddress(port: port)
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if result != 0 {
        close(fd)
        return -1
    }
    return fd
}

private func connectUnix(path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else {
        return -1
    }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
        close(fd)
        return -1
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if result != 0 {
        close(fd)
        return -1
    }
    return fd
}

/// Waits until `process` has ended. Not `waitUntilExit()`: Foundation on Linux sometimes
/// misses a child's exit when many end at once (seen here: killed `redis-server`s left as
/// zombies while `waitUntilExit` spun forever on a blocked test thread, hanging the suite).
/// So: poll `isRunning`, and when Foundation still says running but the kernel says the
/// process is gone or a zombie, reap it and stop waiting.
public func waitForExit(of process: Process) {
    let pid = process.processIdentifier
    for _ in 0..<3_000 {
        guard process.isRunning else {
            return
        }
        if endedPerKernel(pid) {
            var status: Int32 = 0
            _ = waitpid(pid, &status, WNOHANG)
            return
        }
        usleep(2_000)
    }
}

/// Whether `/proc/PID/stat` says the process is a zombie (ended, not reaped) or is gone.
private func endedPerKernel(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else {
        return true
    }
    // The state follows the command name, which is in parentheses and may hold spaces.
    guard let close = stat.lastIndex(of: ")") else {
        return false
    }
    return stat[stat.index(after: close)...].trimmingPrefix(" ").first == "Z"
}

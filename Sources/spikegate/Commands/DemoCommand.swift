import ArgumentParser
import Foundation
import GateCore
import GateRedis
import Logging
import NIOCore
import NIOPosix
import TicketNode
import TrafficReplay
#if canImport(Glibc)
import Glibc
#endif

/// `spikegate demo`: the whole flash sale on this machine — a private `redis-server` (or the
/// in-process store when none is installed), the sale, four ticket nodes weighted 1:2:3:4, the gateway in front, and a replayed crowd with
/// attackers; prints the report and the dashboard's address, then runs until Ctrl-C.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a flash sale with attackers through the gateway on this machine and report who got the tickets.",
        discussion: """
            Starts a private redis-server (`make deps` installs it; without one the sale is \
            kept in this process and the nodes run in it too), creates the sale, starts four \
            ticket nodes (weights 1:2:3:4, each holding its share of the \
            stock) and the gateway with the rules of Tests/Scenarios/rules/sale.yaml (an image \
            CAPTCHA in front of the purchase, bans for zombie accounts and for an account used \
            from many addresses), then replays the people and the attackers. Everything listens \
            on 127.0.0.1; the processes stop with the demo.
            """
    )

    @Option(help: "Real people in the crowd.")
    var users = 100_000

    @Option(help: "Tickets on sale.")
    var tickets = 10_000

    @Option(help: "How long the people take to arrive (default: 5 s, or users/5000 s when longer).")
    var ramp: String?

    @Option(help: "Scale of the attacking populations (1: as many distributed bots as half the people; 0.2: a tenth).")
    var attackers = 0.2

    @Option(help: "Also write the report as JSON to this file.")
    var report: String?

    @Option(help: "The anti-cheat rules and routes (the upstream is added by the demo).")
    var rules = "Tests/Scenarios/rules/sale.yaml"

    @Option(help: "The gateway's port (0: any free port).")
    var port = 8080

    @Option(help: "The admin listener's port, with the dashboard (0: any free port).")
    var adminPort = 9090

    @Option(help: "The redis-server to start.")
    var redisServer = "redis-server"

    @Option(help: "Where the sale is kept: redis (a private redis-server; the nodes are processes), memory (in this process, with the four nodes), or auto (redis when redis-server is installed).")
    var store: DemoStore = .auto

    @Flag(help: "Stop after the report instead of running until Ctrl-C.")
    var exit = false

    func validate() throws {
        guard self.users >= 1, self.tickets >= 1 else {
            throw ValidationError("--users and --tickets must be at least 1")
        }
        guard self.users <= 2_000_000 else {
            throw ValidationError("--users: at most 2,000,000 (the people's addresses must fit in 127.100.0.0-127.131.255.255)")
        }
        guard self.tickets <= 10_000_000 else {
            throw ValidationError("--tickets: at most 10,000,000")
        }
        guard (0...10).contains(self.attackers) else {
            throw ValidationError("--attackers must be from 0 to 10")
        }
        // Every population needs addresses of its own inside 127.0.0.0/8.
        let populations = Scenario.flashSale(users: self.users, tickets: self.tickets, attackers: self.attackers).populations
        for (index, population) in populations.enumerated() {
            guard population.addresses.last.value >> 24 == 127 else {
                throw ValidationError("--users and --attackers: \(population.users) \(population.name) need addresses past 127.255.255.254; use fewer")
            }
            if let other = populations[..<index].first(where: { $0.addresses.overlaps(population.addresses) }) {
                throw ValidationError("--users and --attackers: the \(population.name) (\(population.addresses)) would share addresses with the \(other.name) (\(other.addresses)); use fewer")
            }
        }
        if let ramp = self.ramp {
            do {
                _ = try DurationText.parse(ramp)
            } catch {
                throw ValidationError("--ramp: \(error)")
            }
        }
        guard FileManager.default.isReadableFile(atPath: self.rules) else {
            throw ValidationError("cannot read the rules \(self.rules): run from the repository's top directory, or give --rules")
        }
    }

    func run() async throws {
        let processes = ChildProcesses()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("spikegate-demo-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        // Ctrl-C at any point stops the children too (never left running without the demo).
        let interrupts = Self.interrupts()
        let cleanup: @Sendable () -> Void = {
            processes.stopAll()
            try? FileManager.default.removeItem(at: work)
        }
        let stream = interrupts.stream
        let watcher = Task.detached {
            for await _ in stream {
                print("\nstopping the demo")
                cleanup()
                Foundation.exit(130)
            }
        }
        defer {
            watcher.cancel()
            interrupts.sources.forEach { $0.cancel() }
            cleanup()
        }
        let me = try Self.executable()

        let sale = try self.useRedis()
            ? try await self.startRedisSale(processes: processes, log: work, executable: me)
            : try await self.startMemorySale()
        do {
            try await self.serve(sale: sale, processes: processes, work: work, executable: me)
            await sale.stop()
        } catch {
            await sale.stop()
            throw error
        }
    }

    /// Starts the gateway in front of `sale`'s nodes, replays the crowd, reports, and runs
    /// until Ctrl-C (or returns after the report with `--exit`).
    private func serve(sale: DemoSale, processes: ChildProcesses, work: URL, executable me: String) async throws {
        // The gateway.
        let rules = work.appendingPathComponent("rules")
        try FileManager.default.createDirectory(at: rules, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: self.rules, toPath: rules.appendingPathComponent("sale.yaml").path)
        let backends = sale.backends.enumerated().map { "      - {address: '\($1)', weight: \($0 + 1)}" }
        try ("upstreams:\n  tickets:\n    backends:\n\(backends.joined(separator: "\n"))\n"
            + "    health_check: {path: /health, interval: 1s, timeout: 1s}\n    slow_start: 0s\n")
            .write(to: rules.appendingPathComponent("upstreams.yaml"), atomically: true, encoding: .utf8)
        let port = self.port == 0 ? try Self.freePort() : self.port
        let adminPort = self.adminPort == 0 ? try Self.freePort() : self.adminPort
        // A demo left running holds 8080 and 9090: the crowd must not go to its sale.
        for (taken, option) in [(port, "--port"), (adminPort, "--admin-port")] where !Self.isFree(taken) {
            throw ValidationError("127.0.0.1:\(taken) is in use (another demo still running?): stop it, or give \(option) 0 for any free port")
        }
        try """
            listeners:
              - address: 127.0.0.1:\(port)
            admin:
              address: 127.0.0.1:\(adminPort)
              captcha_answers: true
            \(sale.redis.map { "redis: \($0)" } ?? "")
            rules: \(rules.path)

            """.write(to: work.appendingPathComponent("gateway.yaml"), atomically: true, encoding: .utf8)
        try processes.start(me, ["gateway", "--config", work.appendingPathComponent("gateway.yaml").path], name: "gateway", log: work)
        try await Self.waitForPort(port, what: "the gateway", processes: processes)
        print("gateway on http://127.0.0.1:\(port); dashboard on http://127.0.0.1:\(adminPort)/")

        // The crowd.
        let scenario = Scenario.flashSale(users: self.users, tickets: self.tickets, ramp: try self.ramp.map(DurationText.parse), attackers: self.attackers)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let report: ReplayReport
        var auditFailure: (any Error)?
        do {
            let answers = try CaptchaAnswers(url: "http://127.0.0.1:\(adminPort)", token: nil, group: group)
            let replayer = try Replayer(scenario: scenario, target: try ReplayTarget(url: "http://127.0.0.1:\(port)"), captchaAnswers: answers, group: group)
            print("replaying \(scenario.users) users (\(self.users) people, the rest attackers) ...")
            var replayed = await replayer.run(progress: ReplayCommand.showProgress)
            FileHandle.standardError.write(Data("\n".utf8))
            do {
                replayed.sale = try await sale.audit().summary(populations: replayed.populations, scenario: scenario)
            } catch {
                auditFailure = error
            }
            report = replayed
            try await group.shutdownGracefully()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        print(report.table())
        if let path = self.report {
            guard FileManager.default.createFile(atPath: path, contents: Data(try report.json().utf8)) else {
                throw ValidationError("cannot write the report to \(path)")
            }
        }
        if let auditFailure {
            throw ValidationError("the replay ran, but the sale could not be audited: \(auditFailure)")
        }
        print("dashboard: http://127.0.0.1:\(adminPort)/  metrics: http://127.0.0.1:\(adminPort)/metrics")
        if let sale = report.sale, sale.oversold > 0 || sale.accountsWithTwoTickets > 0 {
            print("OVERSOLD or a second ticket for one account: stop and investigate")
            throw ExitCode(1)
        }
        guard !self.exit else {
            return
        }
        print("the sale stays up until Ctrl-C")
        while processes.exited() == nil {
            try await Task.sleep(for: .milliseconds(500))
        }
        print("\(processes.exited() ?? "a process") stopped; stopping the demo")
    }

    /// Whether the sale is kept in a private redis-server (`--store`; `auto`: when one is installed).
    private func useRedis() throws -> Bool {
        let found = Self.findExecutable(self.redisServer) != nil
        switch self.store {
        case .redis:
            guard found else {
                throw ValidationError("cannot find \(self.redisServer): install it (make deps does) or run with --store memory")
            }
            return true
        case .memory:
            return false
        case .auto:
            if !found {
                print("\(self.redisServer) is not installed: the sale is kept in this process (--store memory; `make deps` installs redis-server)")
            }
            return found
        }
    }

    /// A private redis-server with the sale in it, and four ticket node processes on it.
    private func startRedisSale(processes: ChildProcesses, log work: URL, executable me: String) async throws -> DemoSale {
        let redisPort = try Self.freePort()
        try processes.start(self.redisServer, ["--port", "\(redisPort)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], name: "redis-server", log: work)
        let redis = "redis://127.0.0.1:\(redisPort)"
        try await Self.waitForPort(redisPort, what: "redis-server", processes: processes)
        var configuration = try RedisConfiguration(url: redis)
        configuration.commandTimeout = .seconds(10)
        try await RedisClient.withClient(configuration: configuration) { client, _ in
            try await client.connect()
            let store = try SaleStore(redis: client, sale: "demo")
            try await store.loadScripts()
            try await store.initialize(tickets: self.tickets, payTimeout: .seconds(600), force: true)
        }
        print("redis-server on 127.0.0.1:\(redisPort): sale 'demo' of \(self.tickets) tickets")

        // Four ticket nodes, each holding its weight's share of the stock.
        var backends: [String] = []
        for weight in 1...4 {
            let port = try Self.freePort()
            try processes.start(me, [
                "ticket-node", "--listen", "127.0.0.1:\(port)", "--redis", redis, "--sale", "demo",
                "--local-stock", "\(self.tickets * weight / 10)", "--name", "node-\(weight)", "--threads", "1",
            ], name: "node-\(weight)", log: work)
            backends.append("127.0.0.1:\(port)")
            try await Self.waitForPort(port, what: "ticket node \(weight)", processes: processes)
        }
        print("4 ticket nodes (weights 1:2:3:4): \(backends.joined(separator: ", "))")
        let audited = configuration
        return DemoSale(backends: backends, redis: redis, nodes: [], group: nil) {
            try await RedisClient.withClient(configuration: audited) { client, _ in
                try await client.connect()
                return try await SaleAudit.read(redis: client, sale: "demo")
            }
        }
    }

    /// The sale in this process's memory and four ticket nodes in this process sharing it.
    private func startMemorySale() async throws -> DemoSale {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var nodes: [TicketNodeServer] = []
        // Their start-up lines would interleave with the demo's output; errors still show.
        var logger = Logger(label: "spikegate.ticket-node")
        logger.logLevel = .error
        do {
            let store = try MemorySaleStore(sale: "demo", tickets: self.tickets, payTimeout: .seconds(600), group: group)
            print("the sale 'demo' of \(self.tickets) tickets is kept in this process")
            for weight in 1...4 {
                let configuration = TicketNodeConfiguration(port: 0, sale: "demo", name: "node-\(weight)", localStock: self.tickets * weight / 10)
                nodes.append(try await TicketNodeServer.start(configuration: configuration, store: store, group: group, logger: logger))
            }
            let backends = nodes.map { "127.0.0.1:\($0.port)" }
            print("4 ticket nodes in this process (weights 1:2:3:4): \(backends.joined(separator: ", "))")
            return DemoSale(backends: backends, redis: nil, nodes: nodes, group: group) {
                SaleAudit.read(ledger: store.snapshot)
            }
        } catch {
            for node in nodes {
                try? await node.stop()
            }
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// The path of `name` as `env` would run it, or `nil` when it cannot be found.
    static func findExecutable(_ name: String) -> String? {
        if name.contains("/") {
            return FileManager.default.isExecutableFile(atPath: name) ? name : nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// SIGINT and SIGTERM as a stream (their default action, ending the process at once, is
    /// turned off, so the demo can stop its children first).
    static func interrupts() -> (stream: AsyncStream<Int32>, sources: [any DispatchSourceSignal]) {
        var sources: [any DispatchSourceSignal] = []
        let stream = AsyncStream<Int32> { continuation in
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number)
                source.setEventHandler { continuation.yield(number) }
                source.resume()
                sources.append(source)
            }
        }
        return (stream, sources)
    }

    /// This program's own path (to start the nodes and the gateway).
    static func executable() throws -> String {
        let path = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("cannot find this program's own executable")
        }
        return path
    }

    /// 127.0.0.1:`port` as a socket address.
    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }

    /// Whether 127.0.0.1:`port` can be bound now.
    static func isFree(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else {
            return false
        }
        defer { close(descriptor) }
        var reuse: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: port)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// A port nobody listens on now.
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else {
            throw ValidationError("cannot open a socket to find a free port")
        }
        defer { close(descriptor) }
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else {
            throw ValidationError("cannot find a free port on 127.0.0.1")
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Waits (up to 30 s) until something accepts connections on `port`.
    static func waitForPort(_ port: Int, what: String, processes: ChildProcesses) async throws {
        for _ in 0..<600 {
            if let exited = processes.exited() {
                throw ValidationError("\(exited) stopped during start-up")
            }
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: port)
            let connected = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(descriptor)
            if connected {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ValidationError("\(what) did not listen on 127.0.0.1:\(port) within 30 s")
    }
}

/// `spikegate demo --store`.
enum DemoStore: String, ExpressibleByArgument, CaseIterable {
    case auto, redis, memory
}

/// The demo's sale: the ticket nodes' addresses (weights 1 to 4 in order), the Redis URL the
/// gateway shares when the sale is in Redis, and how to audit it after the replay.
struct DemoSale: Sendable {
    let backends: [String]
    let redis: String?
    /// Nodes running in this process (the in-process store), on `group`.
    let nodes: [TicketNodeServer]
    let group: MultiThreadedEventLoopGroup?
    let audit: @Sendable () async throws -> SaleAudit

    func stop() async {
        for node in self.nodes {
            try? await node.stop()
        }
        try? await self.group?.shutdownGracefully()
    }
}

/// The demo's child processes: started with their output in a log file, stopped together
/// (SIGTERM, then SIGKILL after 5 s).
final class ChildProcesses: @unchecked Sendable {
    private let lock = NSLock()
    private var running: [(name: String, process: Process, log: URL)] = []

    func start(_ executable: String, _ arguments: [String], name: String, log directory: URL) throws {
        let process = Process()
        if executable.contains("/") {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
        }
        let log = directory.appendingPathComponent("\(name).log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else {
            throw ValidationError("cannot write the log \(log.path)")
        }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw ValidationError("cannot start \(executable): \(error.localizedDescription)")
        }
        self.lock.withLock { self.running.append((name, process, log)) }
    }

    /// The name, exit status and last log lines of a child that stopped, if one did.
    func exited() -> String? {
        let stopped = self.lock.withLock { self.running.first { !$0.process.isRunning } }
        return stopped.map { child in
            let log = (try? String(contentsOf: child.log, encoding: .utf8)) ?? ""
            let tail = log.split(separator: "\n").suffix(10).joined(separator: "\n")
            return "\(child.name) (exit \(child.process.terminationStatus))" + (tail.isEmpty ? "" : "; its last words:\n\(tail)")
        }
    }

    func stopAll() {
        let all = self.lock.withLock { self.running }
        for child in all.reversed() where child.process.isRunning {
            child.process.terminate()
        }
        let deadline = Date().addingTimeInterval(5)
        for child in all {
            while child.process.isRunning && Date() < deadline {
                usleep(20_000)
            }
            if child.process.isRunning {
                kill(child.process.processIdentifier, SIGKILL)
                child.process.waitUntilExit()
            }
        }
    }
}

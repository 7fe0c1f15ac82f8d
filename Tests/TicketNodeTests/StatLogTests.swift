import Foundation
import GateChannels
import Logging
import NIOCore
import NIOPosix
import Testing
import TicketNode

@Suite("Stat log")
struct StatLogTests {
    private static func temporaryPath() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("statlog-\(UUID().uuidString.prefix(8)).log")
    }

    private static func entry(_ index: Int, code: Int = 1) -> StatLog.Entry {
        StatLog.Entry(
            time: 1_795_000_000_000 + Int64(index), route: "buy", account: "acct-\(index)\"q",
            status: 200, code: code, localSales: index, micros: 250
        )
    }

    @Test("entries recorded from many tasks at once all reach the file, one JSON line each")
    func concurrentRecords() async throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(at: path) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let log = try StatLog(
            path: path.path, node: "n1", flushInterval: .milliseconds(5), eventLoop: group.next(), logger: Logger(label: "test")
        )
        await withTaskGroup(of: Void.self) { tasks in
            for worker in 0..<8 {
                tasks.addTask {
                    for index in stride(from: worker, to: 4_000, by: 8) {
                        log.record(Self.entry(index, code: index.isMultiple(of: 2) ? 1 : -1))
                    }
                }
            }
        }
        try await log.close(on: group.next())
        try await group.shutdownGracefully()

        let lines = try String(contentsOf: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 4_000)
        var accounts = Set<String>()
        var soldOut = 0
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            #expect(object["node"] as? String == "n1" && object["route"] as? String == "buy")
            if let account = object["account"] as? String {
                accounts.insert(account)
            }
            if object["result"] as? String == "sold_out" {
                soldOut += 1
            }
        }
        #expect(accounts.count == 4_000, "every account, quotes escaped")
        #expect(soldOut == 2_000)
    }

    @Test("closing while a flush is still writing waits for it: nothing recorded before close is lost")
    func closeWaitsForTheWriteUnderWay() async throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(at: path) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let log = try StatLog(path: path.path, node: "n1", eventLoop: group.next(), logger: Logger(label: "test"))
        for index in 0..<20_000 {
            log.record(Self.entry(index))
        }
        // A flush handed to the log's thread (as the periodic one is), not waited for; then close.
        _ = log.flush(on: group.next())
        try await log.close(on: group.next())
        try await group.shutdownGracefully()
        let lines = try String(contentsOf: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 20_000)
    }

    @Test("when the disk falls behind, entries past the cap are counted and the file says how many")
    func droppedEntriesAreCounted() async throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(at: path) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // No periodic flush during the test: the only write is the one `close` does.
        let log = try StatLog(
            path: path.path, node: "n1", flushInterval: .seconds(3_600), maximumPending: 10,
            eventLoop: group.next(), logger: Logger(label: "test")
        )
        for index in 0..<25 {
            log.record(Self.entry(index))
        }
        try await log.close(on: group.next())
        try await log.close(on: group.next())
        try await group.shutdownGracefully()
        let lines = try String(contentsOf: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 11)
        #expect(lines.last?.contains("\"dropped\":15") == true, "\(lines.last ?? "")")
    }

    @Test("the log appends to an existing file; a path that cannot be opened names the path and the reason")
    func openErrors() async throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(at: path) }
        try "earlier line\n".write(to: path, atomically: true, encoding: .utf8)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let log = try StatLog(path: path.path, node: "n1", eventLoop: group.next(), logger: Logger(label: "test"))
        log.record(Self.entry(1))
        try await log.close(on: group.next())
        let lines = try String(contentsOf: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2 && lines[0] == "earlier line")

        let missing = "/nonexistent-\(UUID().uuidString.prefix(8))/stat.log"
        let error = #expect(throws: StatLog.FileError.self) {
            _ = try StatLog(path: missing, node: "n1", eventLoop: group.next(), logger: Logger(label: "test"))
        }
        #expect(error?.description.contains(missing) == true && error?.description.contains("No such file") == true, "\(String(describing: error))")
        try await group.shutdownGracefully()
    }
}

import GateTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@Suite("spikegate ticket-node", .timeLimit(.minutes(1)))
struct TicketNodeCommandTests {
    @Test("a real node process sells over HTTP, names itself, and refuses bad options")
    func realProcess() async throws {
        try await withRedisServer { server in
            let created = try await SpikegateBinary.run(["sale", "init", "--redis", server.url, "--sale", "live", "--tickets", "3"])
            #expect(created.status == 0, "\(created.standardError)")
            let port = try freeLoopbackPort()
            let node = try SpikegateProcess.start([
                "ticket-node", "--listen", "127.0.0.1:\(port)", "--redis", server.url, "--sale", "live",
                "--local-stock", "3", "--name", "n-cli", "--threads", "1",
            ])
            defer { node.kill() }
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            var connection: HTTPTestConnection?
            let up = try await eventually {
                connection = try? await HTTPTestConnection.connect(port: port, group: group)
                return connection != nil
            }
            #expect(up, "the node never listened: \(node.printed)")
            if let http = connection {
                let bought = try await http.request(.POST, "/buy/ticket", headers: [("X-Account-Id", "cli-user")])
                #expect(bought.status == 200 && bought.body.contains("\"code\":1"), "\(bought.body)")
                #expect(bought.header("X-Ticket-Node") == "n-cli")
                #expect(try await http.request(.GET, "/health").status == 200)
                await http.close()
            }
            try await group.shutdownGracefully()

            let badListen = try await SpikegateBinary.run(["ticket-node", "--listen", "nowhere", "--sale", "live", "--local-stock", "1"])
            #expect(badListen.status != 0 && badListen.standardError.contains("must be HOST:PORT"))
            let missingSale = try await SpikegateBinary.run([
                "ticket-node", "--listen", "127.0.0.1:\(try freeLoopbackPort())", "--redis", server.url, "--sale", "absent", "--local-stock", "1",
            ])
            #expect(missingSale.status != 0 && missingSale.standardError.contains("not initialised"), "\(missingSale.standardError)")
        }
    }
}

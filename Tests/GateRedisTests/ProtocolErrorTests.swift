import GateRedis
import GateTestSupport
import Testing

@Suite("GateRedis against a server that is not Redis", .timeLimit(.minutes(1)))
struct ProtocolErrorTests {
    @Test("garbage replies: protocol error, connection closed, no crash")
    func garbageServer() async throws {
        try await withFakeTCPServer(reply: "hello, I am not redis\r\n") { server in
            try await withClient(url: "redis://127.0.0.1:\(server.port)") { client, _ in
                let error = await redisError { try await client.send("PING") }
                #expect(error?.code == .protocolError)
                #expect(error?.message.contains("\"h\"") == true, "\(error?.description ?? "")")
                #expect(error?.command == "PING")

                // The client closed that connection, and still answers (it dials again).
                let closed = try await eventually { server.closed >= 1 }
                #expect(closed)
                let second = await redisError { try await client.send("PING") }
                #expect(second != nil)
            }
        }
    }
}

@testable import GateRedis
import NIOCore
import NIOEmbedded
import Testing

@Suite("RedisChannelHandler on an EmbeddedChannel")
struct RedisChannelHandlerTests {
    let channel: EmbeddedChannel
    let loop: EmbeddedEventLoop

    init() throws {
        self.loop = EmbeddedEventLoop()
        self.channel = EmbeddedChannel(
            handler: RedisChannelHandler(peer: "test", maximumReplyBytes: 1 << 20, silenceLimit: .seconds(2)),
            loop: self.loop
        )
        try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
    }

    func send(_ command: RedisCommand, timeout: TimeAmount = .seconds(1)) throws -> EventLoopFuture<RESPValue> {
        let promise = self.loop.makePromise(of: RESPValue.self)
        try self.channel.writeOutbound(RedisRequest(payload: .single(command, promise), deadline: self.loop.now + timeout))
        return promise.futureResult
    }

    func written() throws -> String {
        var all = ""
        while let buffer = try self.channel.readOutbound(as: ByteBuffer.self) {
            all += String(buffer: buffer)
        }
        return all
    }

    @Test("pipelined commands are written in order and replies matched in order, batches included")
    func ordering() throws {
        let first = try self.send(RedisCommand("GET", "a"))
        let batchPromise = self.loop.makePromise(of: [RESPValue].self)
        try self.channel.writeOutbound(RedisRequest(
            payload: .batch([RedisCommand("INCR", "n"), RedisCommand("NOPE")], batchPromise),
            deadline: self.loop.now + .seconds(1)
        ))
        let last = try self.send(RedisCommand("PING"))
        #expect(try self.written() == "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*1\r\n$4\r\nNOPE\r\n*1\r\n$4\r\nPING\r\n")

        try self.channel.writeInbound(ByteBuffer(string: "$1\r\n1\r\n:7\r\n-ERR unknown"))
        #expect(try first.wait() == .bulkString(ByteBuffer(string: "1")))
        try self.channel.writeInbound(ByteBuffer(string: " command\r\n+PONG\r\n"))
        #expect(try batchPromise.futureResult.wait() == [.integer(7), .error("ERR unknown command")])
        #expect(try last.wait() == .simpleString("PONG"))
    }

    @Test("a timed-out command keeps its slot: its late reply is dropped, the next command gets its own")
    func timeoutKeepsOrder() throws {
        let slow = try self.send(RedisCommand("DEBUG", "SLEEP", "1"), timeout: .milliseconds(50))
        let next = try self.send(RedisCommand("GET", "k"), timeout: .seconds(10))
        self.loop.advanceTime(by: .milliseconds(60))
        do {
            _ = try slow.wait()
            Issue.record("the slow command did not time out")
        } catch let error as RedisError {
            #expect(error.code == .timeout)
            #expect(error.command == "DEBUG SLEEP 1")
        }
        try self.channel.writeInbound(ByteBuffer(string: "+OK\r\n$5\r\nvalue\r\n"))
        #expect(try next.wait() == .bulkString(ByteBuffer(string: "value")))
    }

    @Test("a timeout whose callback closes the connection fails the rest cleanly")
    func timeoutCallbackCloses() throws {
        let first = try self.send(RedisCommand("BLPOP", "a", "0"), timeout: .milliseconds(50))
        let second = try self.send(RedisCommand("BLPOP", "b", "0"), timeout: .milliseconds(50))
        let third = try self.send(RedisCommand("GET", "c"), timeout: .seconds(10))
        let channel = self.channel
        first.whenFailure { _ in channel.close(promise: nil) }
        self.loop.advanceTime(by: .milliseconds(60))
        for (future, code) in [(first, RedisError.Code.timeout), (second, .timeout), (third, .connectionClosed)] {
            do {
                _ = try future.wait()
                Issue.record("a command succeeded on a closed connection")
            } catch let error as RedisError {
                #expect(error.code == code)
            }
        }
        #expect(!self.channel.isActive)
    }

    @Test("a timeout whose callback writes another command keeps replies in order")
    func timeoutCallbackWrites() throws {
        let slow = try self.send(RedisCommand("BLPOP", "a", "0"), timeout: .milliseconds(50))
        let channel = self.channel
        let loop = self.loop
        let retried = loop.makePromise(of: RESPValue.self)
        slow.whenFailure { _ in
            _ = try? channel.writeOutbound(RedisRequest(
                payload: .single(RedisCommand("GET", "k"), retried),
                deadline: loop.now + .seconds(10)
            ))
        }
        self.loop.advanceTime(by: .milliseconds(60))
        _ = try self.written()
        try self.channel.writeInbound(ByteBuffer(string: "*-1\r\n$2\r\nok\r\n"))
        #expect(try retried.futureResult.wait() == .bulkString(ByteBuffer(string: "ok")))
    }

    @Test("after a timeout, a peer silent past the limit is given up: the connection closes")
    func silentPeerIsClosed() throws {
        let slow = try self.send(RedisCommand("GET", "k"), timeout: .milliseconds(50))
        self.loop.advanceTime(by: .milliseconds(60))
        #expect(throws: RedisError.self) { try slow.wait() }
        #expect(self.channel.isActive, "one timeout alone must not close the connection")
        self.loop.advanceTime(by: .seconds(2))
        #expect(!self.channel.isActive)
    }

    @Test("a long command within its own timeout is not silence")
    func longCommandIsNotSilence() throws {
        let blocking = try self.send(RedisCommand("BLPOP", "q", "5"), timeout: .seconds(10))
        self.loop.advanceTime(by: .seconds(5))
        #expect(self.channel.isActive)
        try self.channel.writeInbound(ByteBuffer(string: "*-1\r\n"))
        #expect(try blocking.wait() == .null)
    }

    @Test("a reply nobody asked for is a protocol error and closes the connection")
    func unsolicitedReply() throws {
        #expect(self.channel.isActive)
        try self.channel.writeInbound(ByteBuffer(string: "+OK\r\n"))
        #expect(!self.channel.isActive)
    }

    @Test("garbage fails every pending command with protocolError and closes")
    func garbageFailsPending() throws {
        let one = try self.send(RedisCommand("PING"))
        let two = try self.send(RedisCommand("PING"))
        try self.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 400 Bad Request\r\n"))
        for future in [one, two] {
            do {
                _ = try future.wait()
                Issue.record("a command succeeded on garbage")
            } catch let error as RedisError {
                #expect(error.code == .protocolError)
            }
        }
        #expect(!self.channel.isActive)
    }

    @Test("a closed connection fails every pending command with connectionClosed")
    func closeFailsPending() throws {
        let pending = try (0..<3).map { _ in try self.send(RedisCommand("PING")) }
        try self.channel.close().wait()
        for future in pending {
            do {
                _ = try future.wait()
                Issue.record("a command succeeded on a closed connection")
            } catch let error as RedisError {
                #expect(error.code == .connectionClosed)
                #expect(error.message.contains("may or may not have run"))
            }
        }
    }
}

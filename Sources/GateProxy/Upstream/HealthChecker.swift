import GateCore
import GateRedis
import GateRules
import Logging
import NIOCore
import NIOPosix

/// Active health checks: every backend of every upstream gets `GET <path>` on a fresh
/// connection each `interval`; a 2xx or 3xx within `timeout` passes, anything else (refused,
/// reset, timed out, 4xx, 5xx, not HTTP) fails. `BackendHealth` turns the results into
/// phases (`fall` failures take a backend down, `rise` passes bring it back with slow start).
final class HealthChecker: Sendable {
    private let tasks: [RepeatedTask]
    private let eventLoop: any EventLoop

    private init(tasks: [RepeatedTask], eventLoop: any EventLoop) {
        self.tasks = tasks
        self.eventLoop = eventLoop
    }

    /// Starts checking every backend of `upstreams` on `eventLoop`, the first check at once.
    static func start(upstreams: [Upstream], board: HealthBoard, eventLoop: any EventLoop, logger: Logger) -> HealthChecker {
        var tasks: [RepeatedTask] = []
        for upstream in upstreams {
            for backend in upstream.backends {
                let key = BackendKey(upstream: upstream.name, endpoint: backend.endpoint)
                let check = upstream.healthCheck
                let task = eventLoop.scheduleRepeatedAsyncTask(initialDelay: .zero, delay: check.interval.timeAmount) { _ in
                    Self.probe(key.endpoint, path: check.path, timeout: check.timeout.timeAmount, on: eventLoop).map { failure in
                        let transition = board.recordCheck(key, passed: failure == nil, at: .now())
                        Self.log(transition, key: key, failure: failure, logger: logger)
                    }
                }
                tasks.append(task)
            }
        }
        return HealthChecker(tasks: tasks, eventLoop: eventLoop)
    }

    /// Stops every check (a check under way finishes; its result is still recorded).
    func stop() async {
        for task in self.tasks {
            let cancelled = self.eventLoop.makePromise(of: Void.self)
            task.cancel(promise: cancelled)
            try? await cancelled.futureResult.get()
        }
    }

    private static func log(_ transition: BackendHealth.Transition?, key: BackendKey, failure: String?, logger: Logger) {
        switch transition {
        case .wentDown:
            logger.warning("backend down: health checks failing", metadata: ["backend": "\(key)", "last_failure": "\(failure ?? "-")"])
        case .cameBack:
            logger.info("backend back: health checks passing; slow start begins", metadata: ["backend": "\(key)"])
        case .ejected, nil:
            break
        }
    }

    /// One check: `nil` when it passed, otherwise why it failed.
    static func probe(_ endpoint: Endpoint, path: String, timeout: TimeAmount, on eventLoop: any EventLoop) -> EventLoopFuture<String?> {
        let result = eventLoop.makePromise(of: String?.self)
        let timer = eventLoop.scheduleTask(in: timeout) {
            result.succeed("no answer within \(timeout)")
        }
        result.futureResult.whenComplete { _ in timer.cancel() }
        let host = endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(endpoint.port)\r\nUser-Agent: spikegate-health-check\r\nConnection: close\r\n\r\n"
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StatusLineReader(result: result))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .whenComplete { connected in
                switch connected {
                case .success(let channel):
                    var buffer = channel.allocator.buffer(capacity: request.utf8.count)
                    buffer.writeString(request)
                    channel.writeAndFlush(buffer, promise: nil)
                    result.futureResult.whenComplete { _ in channel.close(promise: nil) }
                case .failure(let error):
                    result.succeed("connect failed: \(error)")
                }
            }
        return result.futureResult
    }
}

/// Reads an HTTP status line and completes with `nil` for 2xx/3xx, otherwise a reason.
private final class StatusLineReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var line: ByteBuffer?
    private let result: EventLoopPromise<String?>

    init(result: EventLoopPromise<String?>) {
        self.result = result
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        if self.line == nil {
            self.line = incoming
        } else {
            self.line!.writeBuffer(&incoming)
        }
        guard let bytes = self.line, let end = bytes.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if (self.line?.readableBytes ?? 0) > 1024 {
                self.result.succeed("no HTTP status line in the first 1 KiB")
            }
            return
        }
        let text = String(decoding: bytes.readableBytesView[..<end], as: UTF8.self)
        let parts = text.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            self.result.succeed("not an HTTP answer: \(text.prefix(40))")
            return
        }
        self.result.succeed((200..<400).contains(status) ? nil : "status \(status)")
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.result.succeed("connection closed before a status line")
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.result.succeed("\(error)")
        context.close(promise: nil)
    }
}

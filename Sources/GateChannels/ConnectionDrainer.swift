import NIOCore
import Synchronization

/// Keeps the server's open connections so a shutdown can drain them, then close what is left.
///
/// `drain()` sends each connection `ChannelShouldQuiesceEvent`: NIOHTTP1's
/// `HTTPServerPipelineHandler` (the ticket node) and the gateway's proxy handler close an idle
/// keep-alive connection at once and a busy one after the response in flight has ended. `closeAll()` is the hard stop when the grace period is over.
public final class ConnectionDrainer: Sendable {
    private struct State {
        var open: [ObjectIdentifier: any Channel] = [:]
        var draining = false
        var drained: [EventLoopPromise<Void>] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Connections open now.
    public var count: Int {
        self.state.withLock { $0.open.count }
    }

    /// Tracks `channel` until it closes; a connection accepted after the drain began is closed.
    public func register(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let draining = self.state.withLock { state -> Bool in
            state.open[id] = channel
            return state.draining
        }
        channel.closeFuture.whenComplete { _ in
            let finished = self.state.withLock { state -> [EventLoopPromise<Void>] in
                state.open[id] = nil
                guard state.draining, state.open.isEmpty else {
                    return []
                }
                defer { state.drained = [] }
                return state.drained
            }
            for promise in finished {
                promise.succeed()
            }
        }
        if draining {
            channel.close(promise: nil)
        }
    }

    /// Asks every connection to finish its request in flight and close; the future completes
    /// (on `eventLoop`) when none is open any more.
    public func drain(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let open = self.state.withLock { state -> [any Channel] in
            state.draining = true
            if !state.open.isEmpty {
                state.drained.append(promise)
            }
            return Array(state.open.values)
        }
        if open.isEmpty {
            promise.succeed()
        }
        for channel in open {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        return promise.futureResult
    }

    /// Drains with a deadline: after `gracePeriod` every connection still open is closed hard.
    /// Returns `false` when that was needed.
    public func drain(on eventLoop: any EventLoop, gracePeriod: TimeAmount) async -> Bool {
        let drained = self.drain(on: eventLoop)
        let timedOut = eventLoop.makePromise(of: Void.self)
        let deadline = eventLoop.scheduleTask(in: gracePeriod) {
            timedOut.fail(ChannelError.ioOnClosedChannel)
        }
        drained.cascade(to: timedOut)
        defer { deadline.cancel() }
        do {
            try await timedOut.futureResult.get()
            return true
        } catch {
            self.closeAll()
            try? await drained.get()
            return false
        }
    }

    /// Closes every connection still open.
    public func closeAll() {
        let open = self.state.withLock { Array($0.open.values) }
        for channel in open {
            channel.close(promise: nil)
        }
    }
}

import NIOCore
import Synchronization

/// Keeps the server's open connections so a shutdown can drain them, then close what is left.
///
/// `drain()` sends each connection `ChannelShouldQuiesceEvent`: NIOHTTP1's
/// `HTTPServerPipelineHandler` closes an idle keep-alive connection at once and a busy one after
/// the response in flight has ended. `closeAll()` is the hard stop when the grace period is over.
final class ConnectionDrainer: Sendable {
    private struct State {
        var open: [ObjectIdentifier: any Channel] = [:]
        var draining = false
        var drained: [EventLoopPromise<Void>] = []
    }

    private let state = Mutex(State())

    /// Tracks `channel` until it closes; a connection accepted after the drain began is closed.
    func register(_ channel: any Channel) {
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
    func drain(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
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

    /// Closes every connection still open.
    func closeAll() {
        let open = self.state.withLock { Array($0.open.values) }
        for channel in open {
            channel.close(promise: nil)
        }
    }
}

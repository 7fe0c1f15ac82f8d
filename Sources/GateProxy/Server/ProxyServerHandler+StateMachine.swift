import NIOCore

extension ProxyServerHandler {
    /// The life of one request/response exchange on a client connection, free of I/O: each
    /// event returns what the handler must do.
    ///
    /// The order it enforces is what keeps a purchase from being sent twice or half-sent:
    /// nothing is written upstream before a connection is ready; request parts that arrive
    /// meanwhile are held (the handler stops reading past the outbound limit); a failed connect
    /// may be retried because nothing was sent; once a byte went upstream, a failure is
    /// answered (502/504) or, after the answer began, the client connection is closed.
    struct StateMachine {
        enum State {
            /// Waiting for a request head.
            case idle
            /// A head was accepted and a backend is being connected; the request parts that
            /// arrive meanwhile are held, `heldBytes` of body so far.
            case connecting(held: [ByteBuffer], heldBytes: Int, requestEnded: Bool, keepAlive: Bool)
            /// The request flows to the upstream as it arrives.
            case forwarding(requestEnded: Bool, responseStarted: Bool, keepAlive: Bool)
            /// The gateway answered itself while the request was still arriving; the rest of it
            /// is read and dropped.
            case answeredLocally(keepAlive: Bool)
            /// The connection is closing; every later event is ignored.
            case closed
        }

        /// What to do with a part of the client's request.
        enum RequestAction {
            /// Hold it until the upstream connection is ready; `pauseReading` once past the limit.
            case hold(pauseReading: Bool)
            /// Write it to the upstream connection.
            case forward
            /// Write it to the upstream connection; the request is complete.
            case forwardEnd
            /// Drop it (after a local answer).
            case drop
            /// The local answer is done and the request too: `keepAlive` says whether the
            /// connection takes another request.
            case finishLocal(keepAlive: Bool)
            /// The part came in a state that cannot have it: close the connection.
            case protocolViolation
        }

        /// What to do when the upstream connection is ready.
        enum ReadyAction {
            /// Write these held body bytes (already framed for the upstream); the request is
            /// complete when `requestEnded`.
            case send(held: [ByteBuffer], requestEnded: Bool)
            /// The exchange is over (the client left): give the connection back.
            case release
        }

        /// What to do with a part of the upstream's answer.
        enum ResponseAction {
            /// Write it to the client.
            case forward
            /// Write the end to the client; `reuseUpstream` when the upstream connection can
            /// serve the next request, `closeClient` when the client connection must close.
            case finish(reuseUpstream: Bool, closeClient: Bool)
            /// Drop it (the exchange is over).
            case drop
        }

        /// What to do when the exchange cannot go on.
        enum FailureAction {
            /// Answer the client locally (nothing of the answer was sent yet).
            case answer(keepAlive: Bool)
            /// Close the client connection (the answer had begun: it cannot be completed).
            case closeClient
            /// Nothing (already over).
            case none
        }

        private(set) var state: State = .idle
        /// Body bytes held while connecting past which the client is not read any more.
        let holdLimit: Int

        init(holdLimit: Int) {
            self.holdLimit = holdLimit
        }

        /// Whether no exchange is under way (a new request head may start one).
        var isIdle: Bool {
            if case .idle = self.state {
                return true
            }
            return false
        }

        /// Whether the current request is still arriving (its end not yet decoded).
        var isReceivingRequest: Bool {
            switch self.state {
            case .connecting(_, _, false, _), .forwarding(false, _, _), .answeredLocally:
                return true
            case .idle, .connecting, .forwarding, .closed:
                return false
            }
        }

        /// Whether the upstream's answer has begun reaching the client.
        var responseStarted: Bool {
            if case .forwarding(_, true, _) = self.state {
                return true
            }
            return false
        }

        /// A request head was accepted for forwarding. `false` in a state that cannot take one.
        mutating func headAccepted(keepAlive: Bool) -> Bool {
            guard case .idle = self.state else {
                return false
            }
            self.state = .connecting(held: [], heldBytes: 0, requestEnded: false, keepAlive: keepAlive)
            return true
        }

        /// A request head was refused or answered locally.
        mutating func headAnsweredLocally(keepAlive: Bool) -> Bool {
            guard case .idle = self.state else {
                return false
            }
            self.state = .answeredLocally(keepAlive: keepAlive)
            return true
        }

        mutating func requestBody(_ buffer: ByteBuffer) -> RequestAction {
            switch self.state {
            case .connecting(var held, let heldBytes, false, let keepAlive):
                held.append(buffer)
                let bytes = heldBytes + buffer.readableBytes
                self.state = .connecting(held: held, heldBytes: bytes, requestEnded: false, keepAlive: keepAlive)
                return .hold(pauseReading: bytes >= self.holdLimit)
            case .forwarding(false, _, _):
                return .forward
            case .answeredLocally, .closed:
                return .drop
            case .idle, .connecting, .forwarding:
                return .protocolViolation
            }
        }

        mutating func requestEnd() -> RequestAction {
            switch self.state {
            case .connecting(let held, let heldBytes, false, let keepAlive):
                self.state = .connecting(held: held, heldBytes: heldBytes, requestEnded: true, keepAlive: keepAlive)
                return .hold(pauseReading: false)
            case .forwarding(false, let responseStarted, let keepAlive):
                self.state = .forwarding(requestEnded: true, responseStarted: responseStarted, keepAlive: keepAlive)
                return .forwardEnd
            case .answeredLocally(let keepAlive):
                self.state = keepAlive ? .idle : .closed
                return .finishLocal(keepAlive: keepAlive)
            case .closed:
                return .drop
            case .idle, .connecting, .forwarding:
                return .protocolViolation
            }
        }

        mutating func upstreamReady() -> ReadyAction {
            guard case .connecting(let held, _, let requestEnded, let keepAlive) = self.state else {
                return .release
            }
            self.state = .forwarding(requestEnded: requestEnded, responseStarted: false, keepAlive: keepAlive)
            return .send(held: held, requestEnded: requestEnded)
        }

        /// No upstream connection could be made: answer (nothing was sent).
        mutating func upstreamUnavailable() -> FailureAction {
            guard case .connecting(_, _, let requestEnded, let keepAlive) = self.state else {
                return .none
            }
            return self.answerLocally(requestEnded: requestEnded, keepAlive: keepAlive)
        }

        mutating func responseHead() -> ResponseAction {
            guard case .forwarding(let requestEnded, false, let keepAlive) = self.state else {
                return .drop
            }
            self.state = .forwarding(requestEnded: requestEnded, responseStarted: true, keepAlive: keepAlive)
            return .forward
        }

        mutating func responseBody() -> ResponseAction {
            guard case .forwarding(_, true, _) = self.state else {
                return .drop
            }
            return .forward
        }

        /// The answer's end; `upstreamKeepAlive` when the upstream did not ask to close.
        mutating func responseEnd(upstreamKeepAlive: Bool) -> ResponseAction {
            guard case .forwarding(let requestEnded, true, let keepAlive) = self.state else {
                return .drop
            }
            // An answer that ended before the request did: the rest of the request cannot be
            // sent anywhere sensible, so neither connection is reused.
            let clean = requestEnded
            self.state = clean && keepAlive ? .idle : .closed
            return .finish(reuseUpstream: clean && upstreamKeepAlive, closeClient: !(clean && keepAlive))
        }

        /// The upstream connection closed, failed or timed out before the answer ended.
        mutating func upstreamFailed() -> FailureAction {
            guard case .forwarding(let requestEnded, let responseStarted, let keepAlive) = self.state else {
                return .none
            }
            if responseStarted {
                self.state = .closed
                return .closeClient
            }
            return self.answerLocally(requestEnded: requestEnded, keepAlive: keepAlive)
        }

        /// A local answer replaces the upstream's. A body still arriving is read and dropped
        /// (bounded by the body size limit and the minimum body rate), and the connection is
        /// kept as the client asked: a purchase refused for want of a backend should not cost
        /// the client its connection.
        private mutating func answerLocally(requestEnded: Bool, keepAlive: Bool) -> FailureAction {
            self.state = requestEnded ? (keepAlive ? .idle : .closed) : .answeredLocally(keepAlive: keepAlive)
            return .answer(keepAlive: keepAlive)
        }

        /// The client connection closed. Returns whether an upstream exchange was under way.
        mutating func clientClosed() -> Bool {
            defer { self.state = .closed }
            switch self.state {
            case .connecting, .forwarding:
                return true
            case .idle, .answeredLocally, .closed:
                return false
            }
        }
    }
}

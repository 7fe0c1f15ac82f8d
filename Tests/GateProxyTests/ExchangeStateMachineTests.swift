@testable import GateProxy
import NIOCore
import NIOHTTP1
import Testing

/// The exchange state machine, transition by transition, without a channel.
@Suite struct ExchangeStateMachineTests {
    typealias Machine = ProxyServerHandler.StateMachine

    @Test func partsArrivingWhileConnectingAreHeldThenSentInOrder() {
        var machine = Machine(holdLimit: 10)
        let accepted = machine.headAccepted(keepAlive: true)
        #expect(accepted)
        guard case .hold(pauseReading: false) = machine.requestBody(ByteBuffer(string: "abcd")) else {
            Issue.record("body not held")
            return
        }
        // Past the limit the client is not read any more.
        guard case .hold(pauseReading: true) = machine.requestBody(ByteBuffer(string: "efghijk")) else {
            Issue.record("reading not paused past the limit")
            return
        }
        guard case .hold = machine.requestEnd() else {
            Issue.record("end not held")
            return
        }
        guard case .send(let held, requestEnded: true) = machine.upstreamReady() else {
            Issue.record("held parts not sent")
            return
        }
        // The body's bytes in order; the end is the `requestEnded` flag.
        #expect(held.map { String(buffer: $0) } == ["abcd", "efghijk"])
        guard case .forward = machine.responseHead(), case .forward = machine.responseBody() else {
            Issue.record("answer not forwarded")
            return
        }
        guard case .finish(reuseUpstream: true, closeClient: false) = machine.responseEnd(upstreamKeepAlive: true) else {
            Issue.record("exchange not finished cleanly")
            return
        }
        // Ready for the next request.
        let acceptedAgain = machine.headAccepted(keepAlive: true)
        #expect(acceptedAgain)
    }

    @Test func anUnreachableUpstreamIsAnsweredAndTheRestOfTheBodyDropped() {
        var machine = Machine(holdLimit: 100)
        _ = machine.headAccepted(keepAlive: true)
        _ = machine.requestEnd()
        guard case .answer(keepAlive: true) = machine.upstreamUnavailable() else {
            Issue.record("a complete request should keep the connection")
            return
        }
        let accepted = machine.headAccepted(keepAlive: true)
        #expect(accepted)
        _ = machine.requestBody(ByteBuffer(string: "partial"))
        guard case .answer(keepAlive: true) = machine.upstreamUnavailable() else {
            Issue.record("the client asked to keep the connection")
            return
        }
        guard case .drop = machine.requestBody(ByteBuffer(string: "rest")) else {
            Issue.record("the rest of the body should be dropped")
            return
        }
        guard case .finishLocal(keepAlive: true) = machine.requestEnd() else {
            Issue.record("after the dropped body the connection takes the next request")
            return
        }
        let next = machine.headAccepted(keepAlive: false)
        #expect(next)
    }

    @Test func aFailureAfterTheAnswerBeganClosesTheClient() {
        var machine = Machine(holdLimit: 100)
        _ = machine.headAccepted(keepAlive: true)
        _ = machine.requestEnd()
        _ = machine.upstreamReady()
        _ = machine.responseHead()
        guard case .closeClient = machine.upstreamFailed() else {
            Issue.record("a half-sent answer cannot be replaced")
            return
        }
        let accepted = machine.headAccepted(keepAlive: true)
        #expect(!accepted)
    }

    @Test func aFailureBeforeTheAnswerIsAnsweredLocally() {
        var machine = Machine(holdLimit: 100)
        _ = machine.headAccepted(keepAlive: true)
        _ = machine.requestEnd()
        _ = machine.upstreamReady()
        guard case .answer(keepAlive: true) = machine.upstreamFailed() else {
            Issue.record("expected a local 502/504")
            return
        }
    }

    @Test func anAnswerEndingBeforeTheRequestReusesNeitherConnection() {
        var machine = Machine(holdLimit: 100)
        _ = machine.headAccepted(keepAlive: true)
        _ = machine.requestBody(ByteBuffer(string: "part"))
        _ = machine.upstreamReady()
        _ = machine.responseHead()
        guard case .finish(reuseUpstream: false, closeClient: true) = machine.responseEnd(upstreamKeepAlive: true) else {
            Issue.record("an early answer must close both sides")
            return
        }
    }

    @Test func aClientLeavingWhileConnectingReleasesTheUntouchedConnection() {
        var machine = Machine(holdLimit: 100)
        _ = machine.headAccepted(keepAlive: true)
        let wasForwarding = machine.clientClosed()
        #expect(wasForwarding)
        guard case .release = machine.upstreamReady() else {
            Issue.record("an unused upstream connection should go back to the pool")
            return
        }
    }

    @Test func partsOutOfOrderAreViolations() {
        var machine = Machine(holdLimit: 100)
        guard case .protocolViolation = machine.requestBody(ByteBuffer(string: "x")) else {
            Issue.record("a body without a head")
            return
        }
        _ = machine.headAccepted(keepAlive: true)
        let accepted = machine.headAccepted(keepAlive: true)
        #expect(!accepted)
    }
}

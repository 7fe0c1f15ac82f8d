import GateCore
import Testing

@Suite struct ConnectionDeadlinesTests {
    let configuration = ConnectionDeadlines.Configuration(
        header: .seconds(10), idle: .seconds(60), bodyMinimumRate: 1000, bodyRateGrace: .seconds(5)
    )

    func at(_ seconds: Double) -> MonotonicInstant {
        MonotonicInstant(nanoseconds: Int64(seconds * 1e9))
    }

    @Test func aSilentNewConnectionGetsTheHeaderTimeNotTheIdleTime() {
        let clock = ConnectionDeadlines(configuration: self.configuration, acceptedAt: self.at(0))
        #expect(clock.deadline == self.at(10))
        #expect(clock.expired(at: self.at(9.9)) == nil)
        #expect(clock.expired(at: self.at(10)) == .idle)
    }

    @Test func aHeadTricklingInExpiresAtTheHeaderDeadlineFromItsFirstByte() {
        var clock = ConnectionDeadlines(configuration: self.configuration, acceptedAt: self.at(0))
        clock.bytesReceived(5, at: self.at(3))
        // More bytes do not move the deadline: the whole head has 10 s from its first byte.
        for second in 4...12 {
            clock.bytesReceived(1, at: self.at(Double(second)))
        }
        #expect(clock.deadline == self.at(13))
        #expect(clock.expired(at: self.at(12.9)) == nil)
        #expect(clock.expired(at: self.at(13)) == .header)
    }

    @Test func theClockStopsWhileTheAnswerIsUnderWayThenIdleStarts() {
        var clock = ConnectionDeadlines(configuration: self.configuration, acceptedAt: self.at(0))
        clock.bytesReceived(100, at: self.at(1))
        clock.headReceived(at: self.at(1))
        clock.requestEnded()
        #expect(clock.deadline == nil)
        #expect(clock.expired(at: self.at(1_000)) == nil)
        clock.responseEnded(at: self.at(1_000))
        #expect(clock.deadline == self.at(1_060))
        #expect(clock.expired(at: self.at(1_059)) == nil)
        #expect(clock.expired(at: self.at(1_060)) == .idle)
    }

    @Test func aSlowBodyIsCheckedAfterTheGraceAgainstTheAverageRate() {
        var clock = ConnectionDeadlines(configuration: self.configuration, acceptedAt: self.at(0))
        clock.bytesReceived(200, at: self.at(0))
        clock.headReceived(at: self.at(0))
        // Nothing in the grace period: checked at its end.
        #expect(clock.deadline == self.at(5))
        #expect(clock.expired(at: self.at(5)) == .slowBody)
        // 8,000 bytes at 1,000 B/s last until 8 s after the head.
        clock.bytesReceived(8_000, at: self.at(4))
        #expect(clock.deadline == self.at(8))
        #expect(clock.expired(at: self.at(7.9)) == nil)
        #expect(clock.expired(at: self.at(8)) == .slowBody)
    }

    @Test func aPipelinedHeadDecodedWhileWaitingStartsItsBody() {
        var clock = ConnectionDeadlines(configuration: self.configuration, acceptedAt: self.at(0))
        clock.headReceived(at: self.at(0))
        clock.requestEnded()
        clock.responseEnded(at: self.at(1))
        clock.headReceived(at: self.at(1))
        #expect(clock.deadline == self.at(6))
        clock.requestEnded()
        #expect(clock.deadline == nil)
    }

    @Test func aZeroMinimumRateNeverExpiresABody() {
        var clock = ConnectionDeadlines(
            configuration: .init(header: .seconds(1), idle: .seconds(1), bodyMinimumRate: 0, bodyRateGrace: .zero),
            acceptedAt: self.at(0)
        )
        clock.headReceived(at: self.at(0))
        #expect(clock.deadline == nil)
        #expect(clock.expired(at: self.at(1e6)) == nil)
    }
}

@Suite struct ConnectionCounterTests {
    let one = IPAddress("192.0.2.1")!
    let two = IPAddress("192.0.2.2")!

    @Test func capsEachAddressAndTheTotal() {
        var counter = ConnectionCounter(maximumConnections: 5, maximumPerAddress: 3)
        for _ in 0..<3 {
            #expect(counter.open(self.one) == nil)
        }
        #expect(counter.open(self.one) == .addressFull(limit: 3))
        #expect(counter.open(self.two) == nil)
        #expect(counter.open(self.two) == nil)
        #expect(counter.total == 5)
        #expect(counter.open(self.two) == .gatewayFull(limit: 5))
        counter.close(self.one)
        #expect(counter.count(for: self.one) == 2)
        #expect(counter.open(self.one) == nil)
    }

    @Test func closingWhatWasNeverOpenedChangesNothing() {
        var counter = ConnectionCounter(maximumConnections: 5, maximumPerAddress: 1)
        counter.close(self.one)
        #expect(counter.total == 0)
        #expect(counter.open(self.one) == nil)
        counter.close(self.one)
        counter.close(self.one)
        #expect(counter.total == 0)
        #expect(counter.count(for: self.one) == 0)
    }
}

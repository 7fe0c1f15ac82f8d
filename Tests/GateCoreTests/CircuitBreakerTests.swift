import GateCore
import Testing

@Suite("CircuitBreaker")
struct CircuitBreakerTests {
    let configuration = CircuitBreaker.Configuration(failureThreshold: 3, openDuration: .milliseconds(100))

    func at(_ milliseconds: Int64) -> MonotonicInstant {
        MonotonicInstant(nanoseconds: milliseconds * 1_000_000)
    }

    @Test("closed lets calls through until the threshold of consecutive failures")
    func opensAtThreshold() {
        var breaker = CircuitBreaker(configuration: self.configuration)
        #expect(breaker.admit(now: self.at(0)) == .allow)
        #expect(breaker.recordFailure(now: self.at(1)) == false)
        #expect(breaker.recordFailure(now: self.at(2)) == false)
        #expect(breaker.admit(now: self.at(3)) == .allow)
        #expect(breaker.recordFailure(now: self.at(3)) == true)
        #expect(breaker.phase(at: self.at(4)) == .open)
        #expect(breaker.admit(now: self.at(50)) == .reject(retryAt: self.at(103)))
    }

    @Test("a success in between resets the count")
    func successResets() {
        var breaker = CircuitBreaker(configuration: self.configuration)
        breaker.recordFailure(now: self.at(1))
        breaker.recordFailure(now: self.at(2))
        breaker.recordSuccess()
        breaker.recordFailure(now: self.at(3))
        breaker.recordFailure(now: self.at(4))
        #expect(breaker.phase(at: self.at(5)) == .closed)
        #expect(breaker.admit(now: self.at(5)) == .allow)
    }

    @Test("after the open duration exactly one probe goes through")
    func halfOpenSingleProbe() {
        var breaker = CircuitBreaker(configuration: self.configuration)
        for millisecond in 0..<3 {
            breaker.recordFailure(now: self.at(Int64(millisecond)))
        }
        #expect(breaker.phase(at: self.at(102)) == .halfOpen)
        #expect(breaker.admit(now: self.at(102)) == .probe)
        #expect(breaker.admit(now: self.at(103)) == .reject(retryAt: self.at(202)))
        breaker.recordSuccess()
        #expect(breaker.admit(now: self.at(104)) == .allow)
        #expect(breaker.phase(at: self.at(104)) == .closed)
    }

    @Test("a failed probe opens the breaker again for a full open duration")
    func failedProbeReopens() {
        var breaker = CircuitBreaker(configuration: self.configuration)
        for millisecond in 0..<3 {
            breaker.recordFailure(now: self.at(Int64(millisecond)))
        }
        #expect(breaker.admit(now: self.at(150)) == .probe)
        #expect(breaker.recordFailure(now: self.at(160)) == true)
        #expect(breaker.admit(now: self.at(200)) == .reject(retryAt: self.at(260)))
        #expect(breaker.admit(now: self.at(260)) == .probe)
    }

    @Test("a probe that never reports is replaced after the open duration")
    func lostProbeIsReplaced() {
        var breaker = CircuitBreaker(configuration: self.configuration)
        for millisecond in 0..<3 {
            breaker.recordFailure(now: self.at(Int64(millisecond)))
        }
        #expect(breaker.admit(now: self.at(110)) == .probe)
        #expect(breaker.admit(now: self.at(209)) == .reject(retryAt: self.at(210)))
        #expect(breaker.admit(now: self.at(210)) == .probe)
    }

    @Test("a threshold below one is raised to one")
    func thresholdFloor() {
        var breaker = CircuitBreaker(configuration: .init(failureThreshold: 0, openDuration: .seconds(1)))
        #expect(breaker.recordFailure(now: self.at(0)) == true)
    }
}

@Suite("ExponentialBackoff")
struct ExponentialBackoffTests {
    @Test(
        "steps double up to the ceiling; equal jitter keeps each delay in [step/2, step]",
        arguments: [0.0, 0.5, 0.999_999]
    )
    func doublingWithJitter(random: Double) {
        var backoff = ExponentialBackoff(initial: .milliseconds(10), maximum: .milliseconds(100))
        let steps: [Int64] = [10, 20, 40, 80, 100, 100]
        for step in steps {
            #expect(backoff.currentStep == .milliseconds(step))
            let delay = backoff.nextDelay(unitRandom: random)
            let expected = Int64(Double(step * 1_000_000) / 2 * (1 + random))
            #expect(delay == .nanoseconds(expected))
            #expect(delay >= .milliseconds(step) / 2 && delay <= .milliseconds(step))
        }
        #expect(backoff.attempts == steps.count)
    }

    @Test("reset goes back to the initial step; random values outside 0..<1 are clamped")
    func resetAndClamp() {
        var backoff = ExponentialBackoff(initial: .milliseconds(10), maximum: .seconds(1))
        _ = backoff.nextDelay(unitRandom: 0)
        _ = backoff.nextDelay(unitRandom: 0)
        backoff.reset()
        #expect(backoff.attempts == 0)
        #expect(backoff.nextDelay(unitRandom: 7) == .milliseconds(10))
        #expect(backoff.nextDelay(unitRandom: -3) == .milliseconds(10))
    }
}

@Suite("MonotonicInstant")
struct MonotonicInstantTests {
    @Test("adding and subtracting durations, saturating at the ends")
    func arithmetic() {
        let start = MonotonicInstant(nanoseconds: 1_000)
        #expect(start + .microseconds(2) == MonotonicInstant(nanoseconds: 3_000))
        #expect((start + .microseconds(2)) - start == .microseconds(2))
        #expect(MonotonicInstant(nanoseconds: .max - 1) + .seconds(1) == MonotonicInstant(nanoseconds: .max))
        #expect(MonotonicInstant(nanoseconds: .min + 1) + .seconds(-1) == MonotonicInstant(nanoseconds: .min))
        #expect(Duration.seconds(Int64.max).nanosecondsClamped == .max)
    }
}

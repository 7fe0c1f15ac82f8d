import GateCore
import Testing

@Suite("Event throttle")
struct EventThrottleTests {
    @Test("the first occurrence passes, then one per interval, each with the count held back")
    func throttles() {
        var throttle = EventThrottle(interval: .seconds(1))
        let start = MonotonicInstant(nanoseconds: 5_000)
        #expect(throttle.admit(at: start) == 0)
        for step in 1...9 {
            #expect(throttle.admit(at: start + .milliseconds(100 * step)) == nil)
        }
        #expect(throttle.admit(at: start + .seconds(1)) == 9)
        #expect(throttle.admit(at: start + .milliseconds(1_500)) == nil)
        // A long quiet stretch: the next one passes at once with what was held back.
        #expect(throttle.admit(at: start + .seconds(60)) == 1)
        #expect(throttle.admit(at: start + .seconds(60)) == nil)
    }
}

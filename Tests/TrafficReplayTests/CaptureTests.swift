import Testing
@testable import TrafficReplay

/// Captured access logs: read strictly, replayed in time order from the clients' addresses.
@Suite struct CaptureTests {
    @Test func aCaptureIsReadInTimeOrderWithItsDroppedLinesCounted() throws {
        let text = """
            {"ts":1000200,"client":"127.5.0.9","account":"a1","method":"POST","target":"/buy/ticket","route":"POST /buy/ticket","decision":"forwarded","rule":null,"upstream":"tickets/127.0.0.1:8081","status":200,"us":812,"upstream_us":700}
            {"ts":1000000,"client":"203.0.113.7","account":null,"method":"GET","target":"/stock?x=1","route":"GET /stock","decision":"challenged","rule":"gate","upstream":null,"status":429,"us":90,"upstream_us":null}
            {"ts":1000300,"dropped":12}
            {"ts":1000900,"client":"203.0.113.8","account":"a2","method":"POST","target":"/buy/ticket","route":null,"decision":"banned","rule":"zombies","upstream":null,"status":403,"us":40,"upstream_us":null}

            """
        let capture = try Capture.parse(text, file: "access.jsonl")
        #expect(capture.dropped == 12)
        #expect(capture.requests.map(\.at) == [0, 200, 900])
        #expect(capture.requests.map(\.client) == ["203.0.113.7", "127.5.0.9", "203.0.113.8"])
        #expect(capture.requests[0].account == nil && capture.requests[1].account == "a1")
        #expect(capture.requests[0].target == "/stock?x=1" && capture.requests[2].decision == "banned")
        // Loopback clients keep their address; the others get distinct ones of 127.200.0.0/16 and up.
        let addresses = capture.sourceAddresses().mapValues(\.description)
        #expect(addresses == ["203.0.113.7": "127.200.0.1", "127.5.0.9": "127.5.0.9", "203.0.113.8": "127.200.0.2"])
    }

    @Test func everyMalformedLineIsReportedWithItsNumber() {
        let text = """
            {"ts":1,"client":"127.0.0.1","method":"GET","target":"/"}
            not json
            {"client":"127.0.0.1","method":"GET","target":"/"}
            {"ts":3,"client":"127.0.0.1","method":"get","target":"/"}
            {"ts":4,"method":"GET","target":"/"}
            """
        #expect {
            _ = try Capture.parse(text, file: "bad.jsonl")
        } throws: { error in
            let message = "\(error)"
            return message.contains("4 malformed line(s)") && message.contains("bad.jsonl:2: not a JSON object")
                && message.contains(#"bad.jsonl:3: no "ts""#) && message.contains("bad.jsonl:4: 'get /' is not a request line")
                && message.contains("bad.jsonl:5: a request line needs")
        }
        #expect(throws: ReplayError.self) { _ = try Capture.parse(#"{"ts":1,"dropped":3}"# + "\n", file: "empty.jsonl") }
    }
}

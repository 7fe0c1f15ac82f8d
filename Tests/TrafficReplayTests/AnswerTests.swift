import Testing
@testable import TrafficReplay

/// The gateway's and the ticket node's answers, read.
@Suite struct AnswerTests {
    @Test func everyAnswerIsReadByStatusAndCode() {
        let bought = Answer.read(status: 200, body: #"{"code":1,"msg":"success","order":"o-17"}"#)
        #expect(bought.outcome == .bought && bought.order == "o-17")
        #expect(Answer.read(status: 200, body: #"{"code":-2,"msg":"account already holds a ticket","order":"o-3"}"#).order == "o-3")
        #expect(Answer.read(status: 200, body: #"{"code":-1,"msg":"sold out"}"#).outcome == .soldOut)
        #expect(Answer.read(status: 200, body: #"{"code":-12,"reason":"sold out"}"#).outcome == .soldOut)
        let challenge = Answer.read(status: 429, body: #"{"code":-3,"reason":"solve","challenge":{"id":"c1","kind":"pow","algorithm":"sha256","difficulty":12}}"#)
        #expect(challenge.outcome == .challenged && challenge.challenge == Answer.Challenge(id: "c1", kind: "pow", difficulty: 12, image: nil))
        let captcha = Answer.read(status: 429, body: #"{"code":-3,"reason":"type","challenge":{"id":"c2","kind":"captcha","image":"/.spikegate/captcha?id=c2"}}"#)
        #expect(captcha.challenge?.image == "/.spikegate/captcha?id=c2")
        #expect(Answer.read(status: 403, body: #"{"code":-9,"reason":"banned"}"#, retryAfter: "600").retryAfter == 600)
        #expect(Answer.read(status: 429, body: #"{"code":-4,"reason":"request in flight"}"#).outcome == .inFlightRefused)
        #expect(Answer.read(status: 429, body: #"{"code":-10,"reason":"too many"}"#).outcome == .rateLimited)
        #expect(Answer.read(status: 503, body: #"{"code":-5,"reason":"overloaded","shed":"deadline"}"#).outcome == .shed)
        #expect(Answer.read(status: 503, body: #"{"code":-5,"reason":"warming up","warmup":{"phase":"warming"}}"#).outcome == .warmupRefused)
        #expect(Answer.read(status: 403, body: #"{"code":-11,"reason":"denied"}"#).outcome == .denied)
        // The node's own -5 (its Redis is down) is an outage of the store, not a shed.
        let storeDown = Answer.read(status: 503, body: #"{"code":-5,"msg":"stock store unavailable: redis connection refused"}"#)
        #expect(storeDown.outcome == .storeUnavailable)
        #expect(Answer.read(status: 503, body: #"{"code":-5,"msg":"something else"}"#).outcome == .error)
        // A purchase too few replicas acknowledged; the gateway without a healthy backend.
        let unconfirmed = Answer.read(status: 503, body: #"{"code":-13,"msg":"purchase not confirmed","order":"41"}"#, retryAfter: "1")
        #expect(unconfirmed.outcome == .unconfirmed && unconfirmed.order == "41" && unconfirmed.retryAfter == 1)
        #expect(Answer.read(status: 503, body: #"{"code":-7,"reason":"no backend of upstream tickets is available"}"#).outcome == .noBackend)
        #expect(Answer.read(status: 403, body: #"{"code":-7,"msg":"the order belongs to another account"}"#).outcome == .error)
        // The gateway's own shared state unavailable (on_store_error: closed) is not the node's -13.
        #expect(Answer.read(status: 503, body: #"{"code":-8,"reason":"the shared state store is unavailable"}"#).outcome == .storeUnavailable)
        #expect(Answer.read(status: 502, body: "").detail == "status 502: (empty body)")
        // A body that is not ours.
        #expect(Answer.read(status: 200, body: "<html>").outcome == .error)
    }

    @Test func theJSONReaderFindsFlatValues() {
        let json = FlatJSON(#"{"code": -3, "reason":"a \"quoted\" word","challenge":{"id":"x9"}}"#)
        #expect(json.integer("code") == -3)
        #expect(json.string("id") == "x9")
        #expect(json.string("reason") == nil)
        #expect(json.integer("missing") == nil)
    }

    @Test func aTargetIsAnOriginWithAPort() throws {
        let target = try ReplayTarget(url: "https://localhost:8443/")
        #expect(target.tls && target.host == "localhost" && target.port == 8443)
        #expect(throws: ReplayError.self) { try ReplayTarget(url: "127.0.0.1:8080") }
        #expect(throws: ReplayError.self) { try ReplayTarget(url: "http://127.0.0.1") }
        #expect(throws: ReplayError.self) { try ReplayTarget(url: "http://127.0.0.1:8080/buy") }
        #expect(throws: ReplayError.self) { try ReplayTarget(url: "http://:8080") }
    }

    @Test func aMisreadCaptchaIsWrongButOfTheSameLength() {
        for text in ["ACDEF", "XY347", "a"] {
            let wrong = Replayer.misread(text)
            #expect(wrong.count == text.count && wrong.uppercased() != text.uppercased())
        }
    }
}

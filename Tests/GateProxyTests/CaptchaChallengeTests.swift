import Foundation
import GateCore
@testable import GateProxy
import GateRedis
import GateRules
import GateTestSupport
import Logging
import NIOHTTP1
import Testing

/// A window whose challenge is an image CAPTCHA, on a real gateway: the JSON names the image,
/// the image is a PNG only its client can fetch, one guess per image, the right characters
/// earn a pass.
@Suite struct CaptchaChallengeTests {
    static let windows = "windows:\n  w: {length: 1m, challenge_above: 1, challenge: captcha, pass_budget: 3}\n"

    static func challenge(in response: HTTPTestConnection.Response) throws -> [String: Any] {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
        #expect(json["code"] as? Int == -3)
        return try #require(json["challenge"] as? [String: Any])
    }

    @Test func theRightCharactersEarnAPassAndAWrongGuessUsesTheImageUp() async throws {
        try await GatewayHarness.with(weights: [1], routes: WindowTests.routes, extra: Self.windows) { harness in
            let client = try await harness.connect()
            #expect(try await client.request(.POST, "/buy/x").status == 200)
            let challenged = try await client.request(.POST, "/buy/x")
            #expect(challenged.status == 429)
            let challenge = try Self.challenge(in: challenged)
            #expect(challenge["kind"] as? String == "captcha")
            #expect(challenge["length"] as? Int == 5)
            let id = try #require(challenge["id"] as? String)
            let imagePath = try #require(challenge["image"] as? String)
            #expect(imagePath == "/.spikegate/captcha?id=\(id)")

            // The image: a PNG of the challenge's characters, fetched as often as wanted.
            let image = try await client.request(.GET, imagePath)
            #expect(image.status == 200)
            #expect(image.header("Content-Type") == "image/png")
            #expect(image.header("Cache-Control") == "no-store")
            let open = try #require(harness.gateway.abuse.peek(id: id, client: "127.0.0.1", now: .now()))
            let answer = try #require(open.answer)
            #expect(image.bytes == CaptchaImage.png(text: answer, seed: open.seed))
            #expect(try await client.request(.GET, imagePath).bytes == image.bytes)
            #expect(try await client.request(.GET, "/.spikegate/captcha?id=nope").status == 404)

            // A wrong guess on another challenge is refused and uses that image up.
            let second = try Self.challenge(in: try await client.request(.POST, "/buy/x"))
            let secondID = try #require(second["id"] as? String)
            let wrong = try await client.request(.GET, "/.spikegate/verify?id=\(secondID)&answer=AAAAAA")
            #expect(wrong.status == 403)
            #expect(wrong.body.contains("wrong solution"))
            #expect(try await client.request(.GET, "/.spikegate/captcha?id=\(secondID)").status == 404)

            // The right characters, in lower case: a pass with its budget.
            let solved = try await client.request(.GET, "/.spikegate/verify?id=\(id)&answer=\(answer.lowercased())")
            #expect(solved.status == 200)
            let pass = try #require((try JSONSerialization.jsonObject(with: Data(solved.body.utf8)) as? [String: Any])?["pass"] as? String)
            for _ in 0..<3 {
                #expect(try await client.request(.POST, "/buy/x", headers: [("X-SpikeGate-Pass", pass)]).status == 200)
            }
            #expect(try await client.request(.POST, "/buy/x", headers: [("X-SpikeGate-Pass", pass)]).status == 429)
            #expect(harness.backends[0].requests == 4)
        }
    }

    @Test func aBrowserGetsAPageWithTheImageAndAField() async throws {
        try await GatewayHarness.with(weights: [1], routes: WindowTests.routes, extra: Self.windows) { harness in
            let browser = try await harness.connect()
            let accept = [("Accept", "text/html")]
            #expect(try await browser.request(.GET, "/buy/x", headers: accept).status == 200)
            let page = try await browser.request(.GET, "/buy/x", headers: accept)
            #expect(page.status == 429)
            #expect(page.header("Content-Type") == "text/html; charset=utf-8")
            let marker = "<img src=\"/.spikegate/captcha?id="
            let start = try #require(page.body.range(of: marker)).upperBound
            let id = String(page.body[start...].prefix(while: { $0 != "\"" }))
            #expect(page.body.contains("name=\"answer\""))
            #expect(try await browser.request(.GET, "/.spikegate/captcha?id=\(id)").header("Content-Type") == "image/png")
            // Another client cannot fetch this client's image.
            let other = try await harness.connect(from: "127.0.0.2")
            defer { Task { await other.close() } }
            #expect(try await other.request(.GET, "/.spikegate/captcha?id=\(id)").status == 404)
        }
    }

    @Test func theAdminListenerTellsAnswersOnlyWhenToldToAndWithTheToken() async throws {
        try await GatewayHarness.with(weights: [1], routes: WindowTests.routes, extra: Self.windows) { harness in
            let client = try await harness.connect()
            #expect(try await client.request(.POST, "/buy/x").status == 200)
            let id = try #require(try Self.challenge(in: try await client.request(.POST, "/buy/x"))["id"] as? String)
            let open = try #require(harness.gateway.abuse.peek(id: id, client: "127.0.0.1", now: .now()))
            let token = "a-token-of-sixteen-or-more"
            let revealing = try await AdminServer.start(
                endpoint: .init(host: "127.0.0.1", port: 0), gateway: harness.gateway, watcher: nil, metrics: { "" },
                token: token, revealsCaptchaAnswers: true, group: harness.group, logger: Logger(label: "test")
            )
            let silent = try await AdminServer.start(
                endpoint: .init(host: "127.0.0.1", port: 0), gateway: harness.gateway, watcher: nil, metrics: { "" },
                group: harness.group, logger: Logger(label: "test")
            )
            let admin = try await HTTPTestConnection.connect(port: revealing.port, group: harness.group)
            #expect(try await admin.request(.GET, "/captcha/answer?id=\(id)").status == 401)
            let told = try await admin.request(.GET, "/captcha/answer?id=\(id)", headers: [("Authorization", "Bearer \(token)")])
            #expect(told.status == 200)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(told.body.utf8)) as? [String: Any])
            #expect(json["answer"] as? String == open.answer, "\(told.body)")
            #expect(try await admin.request(.GET, "/captcha/answer?id=nope", headers: [("Authorization", "Bearer \(token)")]).status == 404)
            // Not enabled: nothing told.
            let other = try await HTTPTestConnection.connect(port: silent.port, group: harness.group)
            let refused = try await other.request(.GET, "/captcha/answer?id=\(id)")
            #expect(refused.status == 404)
            #expect(refused.body.contains("captcha_answers: true"))
            // Telling the answer did not use the challenge up: the right answer still earns a pass.
            let solved = try await client.request(.GET, "/.spikegate/verify?id=\(id)&answer=\(try #require(open.answer))")
            #expect(solved.status == 200)
            await admin.close()
            await other.close()
            await revealing.shutdown()
            await silent.shutdown()
        }
    }
}

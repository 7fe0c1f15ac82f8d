import NIOCore
import Synchronization

/// Where a replay's simulated people "read" an image CAPTCHA: the gateway's admin listener,
/// when it is told to reveal the answers (`admin: {captcha_answers: true}`, load tests only).
/// A person's error rate is the population's `success`; this only stands in for the eyes.
public final class CaptchaAnswers: Sendable {
    private let target: ReplayTarget
    private let token: String?
    private let group: any EventLoopGroup
    /// Keep-alive connections to the admin listener not in use.
    private let idle = Mutex<[ReplayConnection]>([])
    /// At most this many connections to the admin listener at once (a crowd of simulated people
    /// must not flood its accept queue).
    private let slots = ConnectionSlots(8)

    /// Answers from the admin listener at `url` (`http://HOST:PORT`), with the admin `token` if
    /// it wants one.
    public init(url: String, token: String?, group: any EventLoopGroup) throws(ReplayError) {
        let target = try ReplayTarget(url: url)
        guard !target.tls else {
            throw ReplayError("the admin listener speaks plain HTTP: \(url)")
        }
        self.target = target
        self.token = token
        self.group = group
    }

    /// The characters of challenge `id`, or why not.
    func answer(id: String, timeout: Duration) async -> Result<String, ReplayError> {
        await self.slots.acquire(1)
        defer { self.slots.release(1) }
        var connection = self.idle.withLock { $0.popLast() }
        do {
            if connection?.isOpen != true {
                connection = try await ReplayConnection.connect(to: self.target, from: nil, tls: nil, timeout: timeout, group: self.group)
            }
            guard let live = connection else {
                return .failure(ReplayError("no connection to the admin listener"))
            }
            let headers = self.token.map { [("Authorization", "Bearer \($0)")] } ?? []
            let response = try await live.request(method: "GET", path: "/captcha/answer?id=\(id)", headers: headers, body: nil, timeout: timeout)
            self.idle.withLock { $0.append(live) }
            guard response.status == 200, let answer = FlatJSON(response.body).string("answer") else {
                return .failure(ReplayError("the admin listener gave no answer (status \(response.status)): \(Answer.excerpt(response.body))"))
            }
            return .success(answer)
        } catch {
            await connection?.close()
            return .failure(ReplayError("the admin listener could not be asked: \(Replayer.describe(error))"))
        }
    }
}

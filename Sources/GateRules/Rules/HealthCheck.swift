/// The active health check of an upstream's backends: a `GET` of `path` every `interval`,
/// passing on a 2xx answer within `timeout`.
///
/// How many checks in a row take a backend down or bring it back is in
/// `Upstream.health` (`fall`, `rise`).
public struct HealthCheck: Sendable, Hashable {
    /// The path requested, starting with `/`.
    public var path: String
    /// Time between the starts of two checks of one backend.
    public var interval: Duration
    /// How long one check may take; never longer than `interval`.
    public var timeout: Duration

    /// A health check; `GET /health` every 2 s with a 1 s timeout unless told otherwise.
    public init(path: String = "/health", interval: Duration = .seconds(2), timeout: Duration = .seconds(1)) {
        self.path = path
        self.interval = interval
        self.timeout = timeout
    }
}

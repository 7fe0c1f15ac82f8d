/// One server of an upstream and its share of the traffic.
public struct Backend: Sendable, Hashable {
    /// Where to dial it.
    public var endpoint: Endpoint
    /// Its share under smooth weighted round-robin, 1...1000: weights 1 and 3 send it a quarter
    /// and three quarters of the requests.
    public var weight: Int
    /// Requests it is sent at once at most, all event loops together (`max_in_flight`; `nil`:
    /// only the upstream's admission limit applies).
    public var maximumInFlight: Int?

    /// A backend; weight 1 unless told otherwise.
    public init(endpoint: Endpoint, weight: Int = 1, maximumInFlight: Int? = nil) {
        self.endpoint = endpoint
        self.weight = weight
        self.maximumInFlight = maximumInFlight
    }
}

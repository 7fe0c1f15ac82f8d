/// One server of an upstream and its share of the traffic.
public struct Backend: Sendable, Hashable {
    /// Where to dial it.
    public var endpoint: Endpoint
    /// Its share under smooth weighted round-robin, 1...1000: weights 1 and 3 send it a quarter
    /// and three quarters of the requests.
    public var weight: Int

    /// A backend; weight 1 unless told otherwise.
    public init(endpoint: Endpoint, weight: Int = 1) {
        self.endpoint = endpoint
        self.weight = weight
    }
}

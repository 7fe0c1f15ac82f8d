/// One address the gateway accepts client connections on.
public struct Listener: Sendable, Hashable {
    /// Where to bind; port 0 binds any free port.
    public var endpoint: Endpoint
    /// TLS for the connections, or `nil` for plain HTTP.
    public var tls: TLSSource?
    /// Whether connections start with a PROXY protocol v1/v2 header; it is honoured only from
    /// trusted proxies.
    public var proxyProtocol: Bool

    /// A listener; plain HTTP without a PROXY header unless told otherwise.
    public init(endpoint: Endpoint, tls: TLSSource? = nil, proxyProtocol: Bool = false) {
        self.endpoint = endpoint
        self.tls = tls
        self.proxyProtocol = proxyProtocol
    }
}

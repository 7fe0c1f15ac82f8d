/// What a PROXY protocol header says about the connection behind it.
///
/// A trusted proxy (HAProxy, a cloud load balancer) sends one header before the client's bytes;
/// `ProxyProtocolParser` reads it. `source` is the client the decisions are about, `destination`
/// the address the client connected to. Both are `nil` when the header carries no IP addresses:
/// a v2 `LOCAL` header (the proxy's own health check), a v1 `UNKNOWN` line, or a v2 `PROXY` header
/// for the UNSPEC or UNIX family. Then the connection's own peer address is the one to use.
public struct ProxyHeader: Sendable, Hashable {
    /// Which version of the protocol the header was written in.
    public enum Version: Int, Sendable, Hashable {
        /// The text line `PROXY TCP4 …\r\n`.
        case v1 = 1
        /// The binary header after the 12-byte signature.
        case v2 = 2
    }

    /// Whether the connection was relayed for a client.
    public enum Command: Sendable, Hashable {
        /// Relayed for a client; the addresses, when present, are the client's. Every v1 line
        /// (including `UNKNOWN`) is a `proxy` command: v1 has no other.
        case proxy
        /// Opened by the proxy itself (a health check): use the connection's own addresses.
        case local
    }

    /// The version the header was written in.
    public let version: Version
    /// Whether the connection was relayed for a client.
    public let command: Command
    /// The client's address and port, or `nil` when the header carries none.
    public let source: ProxyEndpoint?
    /// The address and port the client connected to, or `nil` when the header carries none.
    public let destination: ProxyEndpoint?

    /// Creates a header; the parser sets `source` and `destination` both or neither.
    public init(version: Version, command: Command, source: ProxyEndpoint?, destination: ProxyEndpoint?) {
        self.version = version
        self.command = command
        self.source = source
        self.destination = destination
    }
}

/// One end of a proxied TCP connection: an IP address and a port.
public struct ProxyEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// The IP address (IPv4-mapped IPv6 addresses are already unmapped to IPv4).
    public let address: IPAddress
    /// The TCP port.
    public let port: UInt16

    /// Creates an endpoint.
    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// `203.0.113.7:443` or `[2001:db8::1]:443`.
    public var description: String {
        switch self.address.family {
        case .v4:
            return "\(self.address):\(self.port)"
        case .v6:
            return "[\(self.address)]:\(self.port)"
        }
    }
}

/// The header rewriting of a forwarded request (the response's is `HTTP1ResponseHead`'s).
///
/// Hop-by-hop fields (RFC 9110 §7.6.1: `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`,
/// `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-Authorization`, `Proxy-Authenticate`, and
/// every field the `Connection` header names) are dropped both ways; the proxy frames each
/// message itself. A `Connection` token cannot remove `Host`, `Content-Length` or the
/// forwarding fields set here — naming `X-Forwarded-For` in `Connection` is an old trick to
/// strip a proxy's client address.
///
/// Towards the upstream:
/// - `X-Forwarded-For`: from a trusted peer, its list with the peer appended; from anyone
///   else, only the peer (a client's own list is never believed).
/// - `X-Forwarded-Proto`: a trusted peer's value is kept, otherwise the listener's scheme.
/// - `X-Request-Id`: a trusted peer's id (1-128 printable ASCII) is kept, otherwise `newID`.
public enum ForwardingHeaders {
    public typealias Field = (name: String, value: String)

    /// The hop-by-hop names, lower-case.
    private static let hopByHop = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization", "proxy-authenticate",
    ]
    /// Names a `Connection` token cannot remove.
    private static let protected = ["host", "content-length", "x-forwarded-for", "x-forwarded-proto", "x-request-id"]

    /// Whether `name` is one of `names` (lower-case), ignoring ASCII case.
    private static func isOne(of names: [String], _ name: String) -> Bool {
        names.contains { name.equalsASCIICaseInsensitive($0) }
    }

    /// The request fields to send upstream.
    /// - Parameters:
    ///   - fields: the client's fields, in order.
    ///   - peer: the address that connected (after a PROXY header from a trusted proxy), as
    ///     text (the caller keeps it per connection instead of formatting it per request).
    ///   - peerTrusted: whether `peer` is one of the trusted proxies.
    ///   - scheme: `http` or `https`, as the client reached the gateway.
    ///   - newID: the request id to use when none is taken from a trusted peer.
    public static func upstreamRequest(
        _ fields: [Field],
        peer: String,
        peerTrusted: Bool,
        scheme: String,
        newID: String
    ) -> [Field] {
        var result: [Field] = []
        result.reserveCapacity(fields.count + 3)
        let added = Self.upstreamFields(fields, peer: peer, peerTrusted: peerTrusted, scheme: scheme) { result.append($0) }
        result.append((name: "X-Forwarded-For", value: added.forwardedFor))
        result.append((name: "X-Forwarded-Proto", value: added.forwardedProto))
        result.append((name: "X-Request-Id", value: added.requestID ?? newID))
        return result
    }

    /// The same rewriting without building a list: the client's fields that go upstream are
    /// handed to `keep` in order, and the forwarding values are returned for the caller to
    /// append (`requestID` is `nil` when the caller must make a new one). The proxy writes the
    /// upstream head this way straight into its buffer.
    public static func upstreamFields(
        _ fields: [Field],
        peer: String,
        peerTrusted: Bool,
        scheme: String,
        keep: (Field) -> Void
    ) -> (forwardedFor: String, forwardedProto: String, requestID: String?) {
        let named = Self.namedByConnection(fields)
        var forwardedFor: [String] = []
        var forwardedProto: String?
        var requestID: String?
        for field in fields {
            let name = field.name
            if name.equalsASCIICaseInsensitive("x-forwarded-for") {
                if peerTrusted {
                    forwardedFor.append(field.value)
                }
            } else if name.equalsASCIICaseInsensitive("x-forwarded-proto") {
                if peerTrusted, forwardedProto == nil {
                    forwardedProto = field.value
                }
            } else if name.equalsASCIICaseInsensitive("x-request-id") {
                if peerTrusted, requestID == nil, Self.isValidRequestID(field.value) {
                    requestID = field.value
                }
            } else if !Self.isOne(of: Self.hopByHop, name) && (named.isEmpty || !Self.isOne(of: named, name)) {
                keep(field)
            }
        }
        let chain = forwardedFor.isEmpty ? peer : (forwardedFor + [peer]).joined(separator: ", ")
        return (chain, forwardedProto ?? scheme, requestID)
    }

    /// The request id that goes upstream (and back in the response) for these request fields.
    public static func isValidRequestID(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 128 && value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// The lower-cased names the `Connection` headers list (never a protected name); empty
    /// without allocating in the common case of no extra names.
    private static func namedByConnection(_ fields: [Field]) -> [String] {
        var named: [String] = []
        for field in fields where field.name.equalsASCIICaseInsensitive("connection") {
            for token in field.value.split(separator: ",") {
                let name = token.trimmingSpaces()
                if !name.isEmpty && !Self.isOne(of: Self.hopByHop, String(name)) && !Self.isOne(of: Self.protected, String(name)) {
                    named.append(name.lowercased())
                }
            }
        }
        return named
    }
}

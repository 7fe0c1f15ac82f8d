/// The header rewriting of a forwarded request and its response.
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

    private static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization", "proxy-authenticate",
    ]
    private static let protected: Set<String> = [
        "host", "content-length", "x-forwarded-for", "x-forwarded-proto", "x-request-id",
    ]

    /// The request fields to send upstream.
    /// - Parameters:
    ///   - fields: the client's fields, in order.
    ///   - peer: the address that connected (after a PROXY header from a trusted proxy).
    ///   - peerTrusted: whether `peer` is one of the trusted proxies.
    ///   - scheme: `http` or `https`, as the client reached the gateway.
    ///   - newID: the request id to use when none is taken from a trusted peer.
    public static func upstreamRequest(
        _ fields: [Field],
        peer: IPAddress,
        peerTrusted: Bool,
        scheme: String,
        newID: String
    ) -> [Field] {
        let dropped = Self.droppedNames(fields)
        var result: [Field] = []
        result.reserveCapacity(fields.count + 3)
        var forwardedFor: [String] = []
        var forwardedProto: String?
        var requestID: String?
        for field in fields {
            let name = field.name.lowercased()
            switch name {
            case "x-forwarded-for":
                if peerTrusted {
                    forwardedFor.append(field.value)
                }
            case "x-forwarded-proto":
                if peerTrusted, forwardedProto == nil {
                    forwardedProto = field.value
                }
            case "x-request-id":
                if peerTrusted, requestID == nil, Self.isValidRequestID(field.value) {
                    requestID = field.value
                }
            default:
                if !dropped.contains(name) {
                    result.append(field)
                }
            }
        }
        forwardedFor.append(peer.description)
        result.append((name: "X-Forwarded-For", value: forwardedFor.joined(separator: ", ")))
        result.append((name: "X-Forwarded-Proto", value: forwardedProto ?? scheme))
        result.append((name: "X-Request-Id", value: requestID ?? newID))
        return result
    }

    /// The response fields to send to the client.
    public static func downstreamResponse(_ fields: [Field]) -> [Field] {
        let dropped = Self.droppedNames(fields)
        return fields.filter { !dropped.contains($0.name.lowercased()) }
    }

    /// The request id that goes upstream (and back in the response) for these request fields.
    public static func isValidRequestID(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 128 && value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// Lower-cased names to drop: the hop-by-hop set and what `Connection` names (but never a
    /// protected name).
    private static func droppedNames(_ fields: [Field]) -> Set<String> {
        var dropped = Self.hopByHop
        for field in fields where field.name.lowercased() == "connection" {
            for token in field.value.split(separator: ",") {
                let name = token.trimmingSpaces().lowercased()
                if !name.isEmpty && !Self.protected.contains(name) {
                    dropped.insert(name)
                }
            }
        }
        return dropped
    }
}

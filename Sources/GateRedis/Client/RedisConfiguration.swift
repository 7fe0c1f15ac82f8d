import GateCore
import NIOCore

/// Where a Redis server listens.
public enum RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// A TCP host (name, IPv4 or IPv6 literal) and port.
    case tcp(host: String, port: Int)
    /// A unix domain socket path.
    case unix(path: String)

    public var description: String {
        switch self {
        case .tcp(let host, let port):
            return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path):
            return "unix:\(path)"
        }
    }
}

/// How the client finds its Redis servers.
public enum RedisTopology: Sendable, Hashable {
    /// One server (a primary, or a standalone Redis) at `endpoint`.
    case single
    /// Redis Cluster: the slot map is read from the first of `seeds` that answers
    /// (`CLUSTER SLOTS`), and each key goes to the primary serving its slot.
    case cluster(seeds: [RedisEndpoint])
    /// Redis Sentinel: the first of `sentinels` that answers names the current primary of
    /// `primaryName` (`SENTINEL GET-MASTER-ADDR-BY-NAME`), asked again on every new connection.
    case sentinel(sentinels: [RedisEndpoint], primaryName: String)
}

/// How the client reaches Redis and how patient it is.
///
/// Defaults suit a gateway on the purchase path: a command that has not answered in 50 ms is
/// treated as failed (the caller then applies its rule's `on_store_error`), five failures in a
/// row open the circuit breaker for half a second, and a lost connection is re-dialled after
/// 10 ms, doubling to at most 2 s.
public struct RedisConfiguration: Sendable {
    /// Where Redis listens (for `cluster` and `sentinel` topologies: the first seed or sentinel).
    public var endpoint: RedisEndpoint
    /// One server, a Redis Cluster, or a primary watched by Sentinel.
    public var topology: RedisTopology = .single
    /// ACL user name for `AUTH user password` (Redis 6+); `nil` uses `AUTH password`.
    public var username: String?
    /// Password sent with `AUTH` on every new connection; `nil` sends no `AUTH`.
    public var password: String?
    /// Database index selected with `SELECT` on every new connection (0 sends none).
    public var database: Int
    /// How long a command may wait for its reply.
    public var commandTimeout: Duration
    /// How long dialling and the `AUTH`/`SELECT` handshake may take.
    public var connectTimeout: Duration
    /// How long a connection whose command timed out may then stay silent before it is closed and
    /// dialled again (a host that vanished sends no reset; TCP alone would wait ~15 minutes).
    public var silentPeerTimeout: Duration
    /// Exclusive connections (for WATCH … EXEC) each event loop may open.
    public var exclusiveConnectionsPerLoop: Int
    /// How long `withConnection` waits for a free exclusive connection.
    public var acquireTimeout: Duration
    /// The largest reply accepted; a larger one is a protocol error.
    public var maximumReplyBytes: Int
    /// Reconnect delays after a lost or failed connection.
    public var reconnectBackoff: ExponentialBackoff
    /// When to stop trying and fail fast.
    public var circuitBreaker: CircuitBreaker.Configuration

    /// Creates a configuration for `endpoint` with the defaults above.
    public init(
        endpoint: RedisEndpoint,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        commandTimeout: Duration = .milliseconds(50),
        connectTimeout: Duration = .milliseconds(500),
        silentPeerTimeout: Duration = .seconds(2),
        exclusiveConnectionsPerLoop: Int = 8,
        acquireTimeout: Duration = .milliseconds(100),
        maximumReplyBytes: Int = 64 * 1024 * 1024,
        reconnectBackoff: ExponentialBackoff = ExponentialBackoff(initial: .milliseconds(10), maximum: .seconds(2)),
        circuitBreaker: CircuitBreaker.Configuration = .init()
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.commandTimeout = commandTimeout
        self.connectTimeout = connectTimeout
        self.silentPeerTimeout = silentPeerTimeout
        self.exclusiveConnectionsPerLoop = max(1, exclusiveConnectionsPerLoop)
        self.acquireTimeout = acquireTimeout
        self.maximumReplyBytes = maximumReplyBytes
        self.reconnectBackoff = reconnectBackoff
        self.circuitBreaker = circuitBreaker
    }

    /// Parses `redis://[user:password@]host[:port][/db]`, `unix://[user:password@]/path[?db=N]`,
    /// `redis-cluster://[user:password@]host:port[,host:port…]` (seed nodes of a Redis Cluster)
    /// or `redis-sentinel://[user:password@]host:port[,host:port…]/PRIMARY[/db]` (sentinels and
    /// the name of the primary they watch; the password is the primary's).
    ///
    /// User and password may be percent-encoded; an IPv6 host goes in brackets
    /// (`redis://[::1]:6379`). The port defaults to 6379 (26379 for sentinels) and the database
    /// to 0. Parameters: `db`, `user`, `password`, and `timeout` (the command timeout, e.g.
    /// `?timeout=100ms`).
    public init(url: String) throws(RedisError) {
        func invalid(_ problem: String) -> RedisError {
            RedisError(
                code: .invalidURL,
                message: "\(problem) in Redis URL '\(RedisConfiguration.redacted(url))'; expected redis://[user:password@]host:port/db, "
                    + "unix:///path/to/redis.sock, redis-cluster://host:port,host:port or redis-sentinel://host:port,host:port/primary-name"
            )
        }
        let scheme: String
        var rest: Substring
        if let found = ["redis", "unix", "redis-cluster", "redis-sentinel"].first(where: { url.hasPrefix($0 + "://") }) {
            scheme = found
            rest = url.dropFirst(found.count + 3)
        } else {
            throw invalid("unknown scheme (redis://, unix://, redis-cluster:// and redis-sentinel:// are supported; rediss:// TLS is not)")
        }

        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }

        // User info ends at the last '@' of the authority (redis://) or at the '@' that starts
        // the socket path (unix://user:pw@/path); an '@' inside a path is part of the path.
        var userInfoEnd: Substring.Index?
        if scheme == "unix" {
            if !rest.hasPrefix("/"), let marker = rest.firstRange(of: "@/") {
                userInfoEnd = marker.lowerBound
            }
        } else {
            let authority = rest[..<(rest.firstIndex(of: "/") ?? rest.endIndex)]
            userInfoEnd = authority.lastIndex(of: "@")
        }
        var username: String?
        var password: String?
        if let at = userInfoEnd {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let parts = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard let user = RedisConfiguration.percentDecoded(parts[0]) else {
                throw invalid("bad percent-encoding in the user name")
            }
            username = user.isEmpty ? nil : user
            if parts.count == 2 {
                guard let secret = RedisConfiguration.percentDecoded(parts[1]) else {
                    throw invalid("bad percent-encoding in the password")
                }
                // `redis://user:@host` means no password, not an empty one.
                password = secret.isEmpty ? nil : secret
            } else if username != nil {
                // `redis://secret@host` is how many tools spell a password alone.
                password = username
                username = nil
            }
        }

        var database = 0
        var endpoints: [RedisEndpoint] = []
        var primaryName: String?
        if scheme == "unix" {
            guard rest.hasPrefix("/"), rest.count > 1 else {
                throw invalid("missing socket path (write unix:///absolute/path.sock)")
            }
            endpoints = [.unix(path: String(rest))]
        } else {
            var hosts = rest
            var path: Substring = ""
            if let slash = rest.firstIndex(of: "/") {
                hosts = rest[..<slash]
                path = rest[rest.index(after: slash)...]
            }
            if scheme == "redis-sentinel" {
                let parts = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
                guard let name = parts.first, !name.isEmpty else {
                    throw invalid("missing the primary's name (write redis-sentinel://host:26379/mymaster)")
                }
                primaryName = String(name)
                path = parts.count == 2 ? parts[1] : ""
            }
            if !path.isEmpty {
                guard scheme != "redis-cluster" else {
                    throw invalid("a Redis Cluster has only database 0; remove '/\(path)'")
                }
                guard let db = Int(path), db >= 0 else {
                    throw invalid("database '\(path)' is not a non-negative integer")
                }
                database = db
            }
            let list = hosts.split(separator: ",", omittingEmptySubsequences: false)
            guard scheme != "redis" || list.count == 1 else {
                throw invalid("several hosts: write redis-cluster:// for a Redis Cluster or redis-sentinel:// for Sentinel")
            }
            for hostPort in list {
                endpoints.append(try Self.endpoint(hostPort, defaultPort: scheme == "redis-sentinel" ? 26379 : 6379, invalid: invalid))
            }
        }

        var commandTimeout: Duration?
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let value = parts.count == 2 ? RedisConfiguration.percentDecoded(parts[1]) : nil
            switch parts[0] {
            case "db":
                guard let text = value, let db = Int(text), db >= 0 else {
                    throw invalid("db '\(parts.count == 2 ? parts[1] : "")' is not a non-negative integer")
                }
                database = db
            case "user", "username":
                guard let text = value else {
                    throw invalid("bad user parameter")
                }
                username = text
            case "password":
                guard let text = value else {
                    throw invalid("bad password parameter")
                }
                password = text
            case "timeout":
                do {
                    commandTimeout = try DurationText.parse(value ?? "")
                } catch {
                    throw invalid("timeout: \(error)")
                }
                guard let commandTimeout, commandTimeout > .zero else {
                    throw invalid("timeout must be above zero")
                }
            default:
                throw invalid("unknown parameter '\(parts[0])' (known: db, user, password, timeout)")
            }
        }

        guard scheme != "redis-cluster" || database == 0 else {
            throw invalid("a Redis Cluster has only database 0")
        }
        self.init(endpoint: endpoints[0], username: username, password: password, database: database)
        switch scheme {
        case "redis-cluster":
            self.topology = .cluster(seeds: endpoints)
        case "redis-sentinel":
            self.topology = .sentinel(sentinels: endpoints, primaryName: primaryName ?? "")
        default:
            break
        }
        if let commandTimeout {
            self.commandTimeout = commandTimeout
        }
    }

    /// `host[:port]` or `[v6]:port`.
    private static func endpoint(_ hostPort: Substring, defaultPort: Int, invalid: (String) -> RedisError) throws(RedisError) -> RedisEndpoint {
        var host: Substring
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw invalid("unclosed '[' around an IPv6 host")
            }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw invalid("unexpected '\(after)' after the IPv6 host")
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
            guard !host.contains(":") else {
                throw invalid("an IPv6 host must be in brackets, as in redis://[::1]:6379")
            }
        } else {
            host = hostPort
        }
        guard !host.isEmpty else {
            throw invalid("missing host")
        }
        var port = defaultPort
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw invalid("port '\(portText)' is not a number from 1 to 65535")
            }
            port = value
        }
        return .tcp(host: String(host), port: port)
    }

    /// The URL with any password (user info or `password=` parameter) replaced by `***`.
    public static func redacted(_ url: String) -> String {
        var redacted = Self.redactedUserInfo(url)
        if let parameter = redacted.firstRange(of: "password=") {
            let valueEnd = redacted[parameter.upperBound...].firstIndex(of: "&") ?? redacted.endIndex
            redacted.replaceSubrange(parameter.upperBound..<valueEnd, with: "***")
        }
        return redacted
    }

    private static func redactedUserInfo(_ url: String) -> String {
        let prefixes = ["redis://", "unix://"]
        guard let scheme = prefixes.first(where: url.hasPrefix), let at = url.lastIndex(of: "@") else {
            return url
        }
        let userStart = url.index(url.startIndex, offsetBy: scheme.count)
        guard at >= userStart else {
            return url
        }
        let userInfo = url[userStart..<at]
        guard let colon = userInfo.firstIndex(of: ":") else {
            return url[..<userStart] + "***" + url[at...]
        }
        return url[..<colon] + ":***" + url[at...]
    }

    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"):
            return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"):
            return byte - UInt8(ascii: "A") + 10
        default:
            return nil
        }
    }
}

extension Duration {
    /// The duration as NIO's `TimeAmount` (nanoseconds, clamped to `Int64`).
    public var timeAmount: TimeAmount {
        .nanoseconds(self.nanosecondsClamped)
    }
}

extension MonotonicInstant {
    /// Now, on NIO's monotonic clock (the clock every I/O module passes to `GateCore`).
    public static func now() -> MonotonicInstant {
        MonotonicInstant(nanoseconds: Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds))
    }
}

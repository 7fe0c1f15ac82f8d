/// Which Redis Cluster primary serves each slot, as `CLUSTER SLOTS` told it and `MOVED`
/// redirections corrected it. Pure: the client asks it where to send a key and tells it what
/// the servers said.
public struct RedisSlotMap: Sendable, Hashable {
    /// A primary's address as the cluster announces it.
    public struct Node: Sendable, Hashable, CustomStringConvertible {
        public let host: String
        public let port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `host:port` (`[v6]:port` for IPv6), as in `MOVED` replies.
        public var description: String {
            self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
        }
    }

    /// The primaries, in the order first seen.
    public private(set) var nodes: [Node] = []
    /// Per slot, the index in `nodes` of its primary; -1 when no node serves it.
    private var owners: [Int16]

    /// A map where no slot is served yet.
    public init() {
        self.owners = Array(repeating: -1, count: RedisHashSlot.count)
    }

    /// A map from `ranges` (first slot, last slot, primary), as `CLUSTER SLOTS` lists them.
    public init(ranges: [(first: Int, last: Int, node: Node)]) {
        self.init()
        for range in ranges where range.first <= range.last {
            let index = self.index(of: range.node)
            for slot in max(0, range.first)...min(RedisHashSlot.count - 1, range.last) {
                self.owners[slot] = index
            }
        }
    }

    /// The primary serving `slot`, if the map knows one.
    public func node(forSlot slot: Int) -> Node? {
        guard slot >= 0, slot < RedisHashSlot.count else {
            return nil
        }
        let owner = Int(self.owners[slot])
        return owner >= 0 ? self.nodes[owner] : nil
    }

    /// Slots served by no known primary.
    public var unservedSlots: Int {
        self.owners.reduce(0) { $0 + ($1 < 0 ? 1 : 0) }
    }

    /// The primaries that serve at least one slot.
    public var servingNodes: [Node] {
        let serving = Set(self.owners.filter { $0 >= 0 })
        return self.nodes.indices.filter { serving.contains(Int16($0)) }.map { self.nodes[$0] }
    }

    /// A `MOVED slot node` answer: `slot` is now served by `node`.
    public mutating func moved(slot: Int, to node: Node) {
        guard slot >= 0, slot < RedisHashSlot.count else {
            return
        }
        self.owners[slot] = self.index(of: node)
    }

    private mutating func index(of node: Node) -> Int16 {
        if let index = self.nodes.firstIndex(of: node) {
            return Int16(index)
        }
        self.nodes.append(node)
        return Int16(self.nodes.count - 1)
    }
}

/// A redirection or refusal of a Redis Cluster node, read from its error reply.
public enum RedisClusterRedirect: Sendable, Hashable {
    /// `MOVED slot host:port`: the slot lives there now (update the map).
    case moved(slot: Int, node: RedisSlotMap.Node)
    /// `ASK slot host:port`: this one command goes there, preceded by `ASKING` (the slot is
    /// being migrated; the map stays).
    case ask(slot: Int, node: RedisSlotMap.Node)
    /// `TRYAGAIN`: a multi-key command during a migration; retry shortly.
    case tryAgain

    /// The same redirection with an empty host (`MOVED 3999 :6381`: Redis 7's "the host you
    /// asked") filled in with `asked`'s.
    public func naming(_ asked: RedisSlotMap.Node) -> RedisClusterRedirect {
        switch self {
        case .moved(let slot, let node) where node.host.isEmpty:
            return .moved(slot: slot, node: RedisSlotMap.Node(host: asked.host, port: node.port))
        case .ask(let slot, let node) where node.host.isEmpty:
            return .ask(slot: slot, node: RedisSlotMap.Node(host: asked.host, port: node.port))
        default:
            return self
        }
    }

    /// Reads an error reply's text (`MOVED 3999 127.0.0.1:6381`); `nil` for any other error.
    public init?(errorReply text: Substring) {
        if text.hasPrefix("TRYAGAIN") {
            self = .tryAgain
            return
        }
        let parts = text.split(separator: " ")
        guard parts.count >= 3, parts[0] == "MOVED" || parts[0] == "ASK", let slot = Int(parts[1]),
            let colon = parts[2].lastIndex(of: ":"), let port = Int(parts[2][parts[2].index(after: colon)...])
        else {
            return nil
        }
        var host = String(parts[2][..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        }
        let node = RedisSlotMap.Node(host: host, port: port)
        self = parts[0] == "MOVED" ? .moved(slot: slot, node: node) : .ask(slot: slot, node: node)
    }
}

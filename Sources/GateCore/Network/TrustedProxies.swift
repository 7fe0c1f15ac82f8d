/// The proxies whose `X-Forwarded-For` entries the gateway believes: an immutable set of CIDR
/// blocks with a lookup that stays cheap however many blocks there are.
///
/// Lookup: the blocks are grouped by family and prefix length, and each group keeps the set of
/// its network addresses as integers. `contains` masks the address once per prefix length that
/// occurs in its family and looks the result up in that group's set, so it costs one hash
/// lookup per distinct prefix length (at most 33 for IPv4, 129 for IPv6; a real list has a
/// handful), never one comparison per block. Overlapping and duplicate blocks are harmless.
///
/// Built once from configuration, every bad entry reported at the same time, and replaced whole
/// on reload.
public struct TrustedProxies: Sendable, CustomStringConvertible {
    /// Every entry of a trusted-proxy list that did not parse.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        /// One entry that did not parse.
        public struct Entry: Sendable, Hashable, CustomStringConvertible {
            /// Where the entry is in the list, counting from 0.
            public let index: Int
            /// The entry as given.
            public let entry: String
            /// Why it did not parse.
            public let error: CIDRBlock.ParseError

            public var description: String {
                "trusted proxy [\(self.index)]: \(self.error)"
            }
        }

        /// The entries that did not parse, in list order; never empty.
        public let entries: [Entry]

        public var description: String {
            let count = self.entries.count == 1 ? "1 trusted proxy entry" : "\(self.entries.count) trusted proxy entries"
            return "\(count) did not parse (indices count from 0):\n" + self.entries.map { "  \($0)" }.joined(separator: "\n")
        }
    }

    /// The networks of one family that share a prefix length.
    private struct Group: Sendable {
        /// The mask of the prefix length.
        let mask: UInt128
        /// The network addresses, as integers.
        let networks: Set<UInt128>
    }

    /// No proxy is trusted: every client is its TCP peer.
    public static let none = TrustedProxies([])

    /// The blocks, in the order given.
    public let blocks: [CIDRBlock]
    private let groupsV4: [Group]
    private let groupsV6: [Group]

    /// Whether no proxy is trusted at all.
    public var isEmpty: Bool {
        self.blocks.isEmpty
    }

    /// A set of `blocks`.
    public init(_ blocks: some Sequence<CIDRBlock>) {
        self.blocks = Array(blocks)
        self.groupsV4 = Self.groups(of: self.blocks, family: .v4)
        self.groupsV6 = Self.groups(of: self.blocks, family: .v6)
    }

    /// Parses every entry as a `CIDRBlock`; throws one error listing every entry that did not
    /// parse, each with its index, so one run of the configuration check shows them all.
    public init(parsing entries: some Sequence<some StringProtocol>) throws(ParseError) {
        var blocks: [CIDRBlock] = []
        var errors: [ParseError.Entry] = []
        for (index, entry) in entries.enumerated() {
            do {
                blocks.append(try CIDRBlock(entry))
            } catch {
                errors.append(ParseError.Entry(index: index, entry: String(entry), error: error))
            }
        }
        guard errors.isEmpty else {
            throw ParseError(entries: errors)
        }
        self.init(blocks)
    }

    /// The blocks in canonical form, comma-separated, for the startup log.
    public var description: String {
        self.isEmpty ? "none" : self.blocks.map(\.description).joined(separator: ", ")
    }

    /// Whether `address` is in any of the blocks.
    public func contains(_ address: IPAddress) -> Bool {
        let value = address.integerValue
        let groups = address.family == .v4 ? self.groupsV4 : self.groupsV6
        for group in groups where group.networks.contains(value & group.mask) {
            return true
        }
        return false
    }

    private static func groups(of blocks: [CIDRBlock], family: IPAddress.Family) -> [Group] {
        var networksByLength: [Int: Set<UInt128>] = [:]
        for block in blocks where block.family == family {
            networksByLength[block.prefixLength, default: []].insert(block.network.integerValue)
        }
        // Longest prefix first: the order does not change the answer, only makes it deterministic.
        return networksByLength.sorted { $0.key > $1.key }.map { length, networks in
            Group(mask: CIDRBlock.mask(prefixLength: length, family: family), networks: networks)
        }
    }
}

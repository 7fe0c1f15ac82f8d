/// A ban as gateways share it through Redis (the `spikegate:{bans}` hash): field `KIND|KEY`,
/// value `UNTIL|RULE|REASON` with `UNTIL` in Unix milliseconds (wall-clock, so every gateway
/// reads it alike). Pure encoding and decoding.
public struct ClusterBan: Sendable, Hashable {
    public let kind: BanList.Kind
    public let key: String
    public let rule: String
    public let reason: String
    /// Unix milliseconds.
    public let until: Int64

    public init(kind: BanList.Kind, key: String, rule: String, reason: String, until: Int64) {
        self.kind = kind
        self.key = key
        self.rule = rule
        self.reason = reason
        self.until = until
    }

    /// The hash and its version counter (one hash tag: one Redis Cluster slot).
    public static let hashKey = "spikegate:{bans}"
    public static let versionKey = "spikegate:{bans}:version"

    /// Whom a ban holds: an address or an account.
    public struct Target: Sendable, Hashable {
        public let kind: BanList.Kind
        public let key: String

        public init(kind: BanList.Kind, key: String) {
            self.kind = kind
            self.key = key
        }
    }

    public var target: Target {
        Target(kind: self.kind, key: self.key)
    }

    public static func field(kind: BanList.Kind, key: String) -> String {
        "\(kind.rawValue)|\(key)"
    }

    public var field: String {
        Self.field(kind: self.kind, key: self.key)
    }

    public var value: String {
        "\(self.until)|\(self.rule)|\(self.reason)"
    }

    /// The ban a hash entry holds; `nil` for an entry that is not one (ignored, never trusted).
    public init?(field: String, value: String) {
        let where_ = field.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
        let what = value.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
        guard where_.count == 2, let kind = BanList.Kind(rawValue: String(where_[0])), !where_[1].isEmpty,
              what.count == 3, let until = Int64(what[0])
        else {
            return nil
        }
        self.init(kind: kind, key: String(where_[1]), rule: String(what[1]), reason: String(what[2]), until: until)
    }
}

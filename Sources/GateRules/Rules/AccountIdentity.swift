/// Where the gateway reads the account a request acts for, for the per-account rules (one
/// request in flight per account, per-account windows).
///
/// Written once across the rule files, as the `identity:` section. This version reads a header;
/// signed tokens (a JWT's `sub`, an HMAC-signed cookie) are the next forms.
public struct AccountIdentity: Sendable, Hashable {
    /// Whose word the header is taken on.
    public enum Trust: String, Sendable, Hashable, CaseIterable {
        /// Only requests that come through a trusted proxy (`trusted_proxies`) carry an account:
        /// the header is set by the proxy in front that authenticated the user. From anyone
        /// else the header is ignored (the request has no account).
        case proxies
        /// Any client's header is believed: only where the rule's author knows that everything
        /// reaching the gateway has been authenticated on the way.
        case clients
    }

    /// The header holding the account id (matched ignoring case).
    public var header: String {
        didSet {
            self.headerLowercased = self.header.lowercased()
        }
    }
    /// `header` in lower case, for comparing with request fields.
    public private(set) var headerLowercased: String
    public var trust: Trust
    /// Where it is written.
    public var file: String
    public var line: Int

    public init(header: String, trust: Trust = .proxies, file: String, line: Int) {
        self.header = header
        self.headerLowercased = header.lowercased()
        self.trust = trust
        self.file = file
        self.line = line
    }
}

/// One request in flight per account on a route: a second request of an account that has one
/// under way is refused (429) until the first ends.
public struct InFlightPolicy: Sendable, Hashable {
    /// Whether refusals are real.
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// Refuse the second request.
        case enforce
        /// Let it through but count (and log) that it would have been refused: to try a rule on
        /// live traffic before enforcing it.
        case shadow
    }

    /// How the flag is kept in Redis, when the gateway has one (every gateway sharing it then
    /// sees every flag). Without Redis, flags are this process's own.
    public enum Store: String, Sendable, Hashable, CaseIterable {
        /// `WATCH`/`GET`/`MULTI`/`SET`/`EXEC`: an optimistic transaction.
        case watch
        /// `SET NX PX`: one command.
        case setnx
        /// A script (`EVALSHA`) that sets the flag if absent.
        case lua
    }

    /// What to do when Redis cannot be asked (down, slow, circuit open).
    public enum StoreErrorPolicy: String, Sendable, Hashable, CaseIterable {
        /// Enforce in this process only, and count it.
        case local
        /// Let the request through unlimited.
        case open
        /// Refuse it (503).
        case closed
    }

    public var mode: Mode
    /// How long a flag lives if its request never releases it (a gateway killed mid-request):
    /// longer than the slowest purchase, short enough that a stuck account is free again soon.
    public var ttl: Duration
    public var store: Store
    public var onStoreError: StoreErrorPolicy

    /// What a purchase route gets when it says nothing about `in_flight`.
    public static let purchaseDefault = InFlightPolicy()

    public init(mode: Mode = .enforce, ttl: Duration = .seconds(30), store: Store = .watch, onStoreError: StoreErrorPolicy = .local) {
        self.mode = mode
        self.ttl = ttl
        self.store = store
        self.onStoreError = onStoreError
    }
}

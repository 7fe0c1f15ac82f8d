import GateCore

/// Where the gateway reads the account a request acts for, for the per-account rules (one
/// request in flight per account, per-account windows).
///
/// Written once across the rule files, as the `identity:` section, in one of three forms:
/// - `header:` a header set by the proxy in front that authenticated the user (`trust:
///   proxies`), or by any client where the author knows everything arriving is authenticated
///   (`trust: clients`);
/// - `jwt:` a JWT (HS256 or ES256) in `Authorization: Bearer` or a named cookie; its `sub` is
///   the account;
/// - `signed_cookie:` a cookie the login service signs with a shared secret
///   (`ACCOUNT.EXPIRES.MAC`, see `SignedCookie`).
/// A request without the header, token or cookie has no account; a token or cookie that is
/// there but does not verify is refused (401).
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

    /// What carries the account.
    public enum Source: Sendable, Hashable {
        /// The value of `header`, believed as `trust` says.
        case header
        /// A JWT in `Authorization: Bearer …`, or in the cookie named here.
        case jwt(JWTVerifier, cookie: String?)
        /// A signed cookie of this name.
        case signedCookie(SignedCookie, cookie: String)
    }

    /// The header holding the account id, token or cookie (matched ignoring case):
    /// `Authorization` or `Cookie` for the token forms.
    public var header: String {
        didSet {
            self.headerLowercased = self.header.lowercased()
        }
    }
    /// `header` in lower case, for comparing with request fields.
    public private(set) var headerLowercased: String
    public var trust: Trust
    public var source: Source
    /// Where it is written.
    public var file: String
    public var line: Int

    public init(header: String, trust: Trust = .proxies, file: String, line: Int) {
        self.header = header
        self.headerLowercased = header.lowercased()
        self.trust = trust
        self.source = .header
        self.file = file
        self.line = line
    }

    /// A signed form (`.jwt` or `.signedCookie`): the signature is the trust, from any client.
    public init(source: Source, file: String, line: Int) {
        switch source {
        case .header:
            self.init(header: "X-Account-Id", file: file, line: line)
            return
        case .jwt(_, let cookie):
            self.init(header: cookie == nil ? "Authorization" : "Cookie", trust: .clients, file: file, line: line)
        case .signedCookie:
            self.init(header: "Cookie", trust: .clients, file: file, line: line)
        }
        self.source = source
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

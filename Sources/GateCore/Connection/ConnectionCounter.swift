/// Open connections per client address, with a cap for each address and one for all of them.
///
/// One address that opens thousands of connections (a bot farm behind one IP, a slowloris
/// attack) must not use up the gateway's file descriptors for everyone else. The edge asks
/// `open(_:)` when a connection arrives (or, behind a trusted proxy, when the PROXY header has
/// named the real client) and calls `close(_:)` exactly once for every admitted connection.
public struct ConnectionCounter: Sendable {
    /// Why a connection was refused.
    public enum Refusal: Sendable, Hashable, CustomStringConvertible {
        /// The gateway holds `maximumConnections` already.
        case gatewayFull(limit: Int)
        /// This address holds `maximumPerAddress` already.
        case addressFull(limit: Int)

        public var description: String {
            switch self {
            case .gatewayFull(let limit):
                return "the gateway holds its maximum of \(limit) connections"
            case .addressFull(let limit):
                return "this address holds its maximum of \(limit) connections"
            }
        }
    }

    public let maximumConnections: Int
    public let maximumPerAddress: Int
    private var perAddress: [IPAddress: Int] = [:]
    /// Connections admitted and not yet closed.
    public private(set) var total = 0

    public init(maximumConnections: Int, maximumPerAddress: Int) {
        self.maximumConnections = max(1, maximumConnections)
        self.maximumPerAddress = max(1, maximumPerAddress)
    }

    /// Admits a connection from `address`, or says why not.
    public mutating func open(_ address: IPAddress) -> Refusal? {
        guard self.total < self.maximumConnections else {
            return .gatewayFull(limit: self.maximumConnections)
        }
        let held = self.perAddress[address, default: 0]
        guard held < self.maximumPerAddress else {
            return .addressFull(limit: self.maximumPerAddress)
        }
        self.perAddress[address] = held + 1
        self.total += 1
        return nil
    }

    /// An admitted connection from `address` closed.
    public mutating func close(_ address: IPAddress) {
        guard let held = self.perAddress[address] else {
            return
        }
        self.total -= 1
        self.perAddress[address] = held > 1 ? held - 1 : nil
    }

    /// Connections admitted from `address` and still open.
    public func count(for address: IPAddress) -> Int {
        self.perAddress[address, default: 0]
    }
}

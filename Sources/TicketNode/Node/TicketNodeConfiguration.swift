/// How a ticket node runs.
public struct TicketNodeConfiguration: Sendable {
    /// Address to listen on.
    public var host: String
    /// Port to listen on (0: any free port, see `TicketNodeServer.port`).
    public var port: Int
    /// The sale this node sells.
    public var sale: String
    /// Name sent in `X-Ticket-Node` and recorded in orders.
    public var name: String
    /// This node's share of the stock.
    public var localStock: Int
    /// Extra share on top (0.2 = 20 %), so live nodes absorb part of a dead node's share.
    public var buffer: Double
    /// How often expired reservations are returned to stock.
    public var reapInterval: Duration
    /// How often a closed node (share used up, or sold out) looks at the global stock again.
    public var refreshInterval: Duration
    /// Where to append one line per request (`nil`: no stat log).
    public var statLogPath: String?
    /// Replicas that must acknowledge each purchase and payment (`WAIT`) before it is answered
    /// as done; 0 answers as soon as the primary has it.
    public var minReplicasAck: Int = 0
    /// How long a purchase waits for those acknowledgements before it is answered
    /// `unconfirmed` (code -8) and left to the reconciler.
    public var replicaAckTimeout: Duration = .milliseconds(100)
    /// How often unconfirmed purchases and payments are looked at again.
    public var reconcileInterval: Duration = .seconds(1)

    public init(
        host: String = "127.0.0.1",
        port: Int,
        sale: String,
        name: String,
        localStock: Int,
        buffer: Double = 0.2,
        reapInterval: Duration = .seconds(1),
        refreshInterval: Duration = .milliseconds(200),
        statLogPath: String? = nil
    ) {
        self.host = host
        self.port = port
        self.sale = sale
        self.name = name
        self.localStock = localStock
        self.buffer = buffer
        self.reapInterval = reapInterval
        self.refreshInterval = refreshInterval
        self.statLogPath = statLogPath
    }
}

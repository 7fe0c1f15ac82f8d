import GateCore

/// Sizes and counts past which the gateway refuses or pauses, so no client can make it hold
/// more than it planned for.
public struct Limits: Sendable, Hashable {
    /// The request-head limits, as `RequestHeadCheck` takes them: URI bytes (`414`), header
    /// count and bytes (`431`), body bytes (`413`).
    public var requestHead: RequestHeadCheck.Limits
    /// Open client connections at once, all clients together.
    public var maximumConnections: Int
    /// Open client connections at once from one client address.
    public var maximumConnectionsPerIP: Int
    /// Bytes buffered per connection towards the slower side; past it the gateway stops
    /// reading from the other side until the buffer drains.
    public var outboundBufferBytes: Int
    /// Idle keep-alive connections kept per event loop and backend; 0 closes each after use.
    public var upstreamIdlePerLoop: Int

    /// Limits, each defaulting to the value a flash-sale gateway starts with (the request-head
    /// ones: 8 KiB URI, 100 header fields, 32 KiB of headers, 1 MiB body).
    public init(
        requestHead: RequestHeadCheck.Limits = RequestHeadCheck.Limits(),
        maximumConnections: Int = 10_000,
        maximumConnectionsPerIP: Int = 256,
        outboundBufferBytes: Int = 256 * 1024,
        upstreamIdlePerLoop: Int = 256
    ) {
        self.requestHead = requestHead
        self.maximumConnections = maximumConnections
        self.maximumConnectionsPerIP = maximumConnectionsPerIP
        self.outboundBufferBytes = outboundBufferBytes
        self.upstreamIdlePerLoop = upstreamIdlePerLoop
    }
}

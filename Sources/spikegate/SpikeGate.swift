import ArgumentParser
import GateCore

/// The `spikegate` command: the gateway, the ticket node and their tools in one executable.
@main
struct SpikeGate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spikegate",
        abstract: "An anti-cheat gateway for flash sales.",
        discussion: """
            SpikeGate stands in front of ticket nodes during a flash sale: it lets real people \
            through fairly, makes bots pay with challenges and bans, sheds what the backends \
            cannot take, and never lets a ticket be sold twice.
            """,
        version: SpikeGateVersion.current,
        subcommands: [GatewayCommand.self, TicketNodeCommand.self, SaleCommand.self, RulesCommand.self, ReplayCommand.self, DemoCommand.self, Bench.self]
    )
}

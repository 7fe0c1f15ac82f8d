import ArgumentParser
import GateCore
import GateRedis
import NIOCore
import NIOPosix
import TicketNode

/// `spikegate sale …`: create, inspect and remove a sale's stock in Redis.
struct SaleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sale",
        abstract: "Create, inspect and reset a sale's stock in Redis.",
        subcommands: [Initialize.self, Status.self, Reset.self]
    )

    /// Where the sale lives.
    struct Target: ParsableArguments {
        @Option(help: "Redis URL (redis://[user:password@]host:port/db or unix:///path).")
        var redis = "redis://127.0.0.1:6379"

        @Option(help: "Sale id (letters, digits, '-', '_', '.').")
        var sale: String

        /// Runs `body` with a store for the sale, connected, and closes everything after.
        func withStore<Result: Sendable>(_ body: (SaleStore) async throws -> Result) async throws -> Result {
            var configuration = try RedisConfiguration(url: self.redis)
            configuration.commandTimeout = .seconds(5)
            return try await RedisClient.withClient(configuration: configuration) { client, _ in
                let store = try SaleStore(redis: client, sale: self.sale)
                try await client.connect()
                return try await body(store)
            }
        }
    }

    struct Initialize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create a sale with N tickets (refuses to overwrite sold tickets without --force)."
        )

        @OptionGroup var target: Target

        @Option(help: "Number of tickets.")
        var tickets: Int

        @Option(help: "How long a reservation may stay unpaid before its ticket returns to stock.")
        var payTimeout = "10m"

        @Flag(help: "Overwrite a sale that already has sold tickets (they are discarded).")
        var force = false

        func validate() throws {
            guard self.tickets > 0 else {
                throw ValidationError("--tickets must be at least 1")
            }
            do {
                guard try DurationText.parse(self.payTimeout) > .zero else {
                    throw ValidationError("--pay-timeout must be positive")
                }
            } catch let error as DurationText.ParseError {
                throw ValidationError("--pay-timeout: \(error)")
            }
        }

        func run() async throws {
            let payTimeout = try DurationText.parse(self.payTimeout)
            let status = try await self.target.withStore { store in
                try await store.initialize(tickets: self.tickets, payTimeout: payTimeout, force: self.force)
                return try await store.status()
            }
            print("sale \(self.target.sale): \(status.total) tickets, pay timeout \(DurationText.format(status.payTimeout))")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a sale's counters.")

        @OptionGroup var target: Target

        func run() async throws {
            let status = try await self.target.withStore { store in try await store.status() }
            print("""
                sale \(self.target.sale)
                  total      \(status.total)
                  sold       \(status.sold)  (paid \(status.paid), reserved \(status.reserved))
                  remaining  \(status.remaining)
                  orders     \(status.orders)  (expired ones included)
                  pay timeout \(DurationText.format(status.payTimeout))
                """)
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a sale: stock, orders and holders.")

        @OptionGroup var target: Target

        func run() async throws {
            try await self.target.withStore { store in try await store.reset() }
            print("sale \(self.target.sale) deleted")
        }
    }
}

import ArgumentParser

/// `spikegate bench …`: load generators used by the Makefile's `bench-*` targets.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure SpikeGate's parts against a live server.",
        subcommands: [RedisBench.self]
    )
}

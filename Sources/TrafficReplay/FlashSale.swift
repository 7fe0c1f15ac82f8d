extension Scenario {
    /// The demo's and the headline benchmark's sale: `users` real people for `tickets` tickets,
    /// and the attackers of `Tests/Scenarios/mixed-attack.yaml` scaled to them — a 100-parallel
    /// bot with a CAPTCHA farm, zombie accounts behind one address, one account behind many
    /// addresses, distributed bots that cannot read a CAPTCHA (half as many as the people,
    /// hammering), and a few scalpers typing CAPTCHAs by hand. Meant for the rules of
    /// `Tests/Scenarios/rules/sale.yaml` (a CAPTCHA gate; zombie and hydra bans).
    ///
    /// People arrive over `ramp` (by default 5 s, or `users / 5000` s when longer); everyone
    /// else at once. `attackers` scales the bot populations (1: as many distributed bots as half
    /// the people; the zombies, the hydra and the parallel bots keep a floor).
    public static func flashSale(users: Int, tickets: Int, ramp: Duration? = nil, attackers: Double = 1) -> Scenario {
        func scaled(_ count: Int, floor: Int) -> Int {
            max(floor, Int((Double(count) * attackers).rounded()))
        }
        var scenario = Scenario(name: "flash sale: \(users) people for \(tickets) tickets, with attackers")
        scenario.timeLimit = .seconds(max(300, users / 200))
        scenario.maximumConnections = 4_000
        var people = Population(name: "people", users: users)
        people.real = true
        people.addresses = AddressRange(first: IPv4(127, 100, 0, 1), count: users)
        people.arrival = .ramp(ramp ?? .seconds(max(5, users / 5_000)))
        people.attempts = 6
        people.think = .milliseconds(500)
        people.challenges = .solve(after: .seconds(1), success: 0.9)

        var parallel = Population(name: "parallel-bot", users: scaled(users / 20_000, floor: 3))
        parallel.parallel = 100
        parallel.addresses = AddressRange(first: IPv4(127, 20, 0, 1), count: parallel.users)
        parallel.attempts = 10
        parallel.think = .milliseconds(100)
        parallel.honorRetryAfter = false
        parallel.stopWhenBanned = false
        parallel.challenges = .solve(after: .zero, success: 1)

        var zombies = Population(name: "zombies", users: scaled(users / 100, floor: 100))
        zombies.addresses = AddressRange(first: IPv4(127, 30, 0, 1), count: 1)
        zombies.attempts = 10
        zombies.honorRetryAfter = false
        zombies.stopWhenBanned = false

        var hydra = Population(name: "hydra", users: scaled(users / 100, floor: 100))
        hydra.accounts = .shared(count: 1)
        hydra.addresses = AddressRange(first: IPv4(127, 40, 0, 1), count: hydra.users)
        hydra.attempts = 10
        hydra.honorRetryAfter = false
        hydra.stopWhenBanned = false

        var distributed = Population(name: "distributed", users: scaled(users / 2, floor: 400))
        distributed.addresses = AddressRange(first: IPv4(127, 50, 0, 1), count: distributed.users)
        distributed.attempts = 20
        distributed.think = .milliseconds(100)
        distributed.honorRetryAfter = false
        distributed.stopWhenBanned = false

        var scalpers = Population(name: "scalpers", users: max(5, tickets / 500))
        scalpers.addresses = AddressRange(first: IPv4(127, 60, 0, 1), count: scalpers.users)
        scalpers.attempts = 10
        scalpers.think = .seconds(1)
        scalpers.challenges = .solve(after: .seconds(3), success: 0.95)

        scenario.populations = [people, parallel, zombies, hydra, distributed, scalpers]
        return scenario
    }
}

import Foundation
import GateRules
import Testing
@testable import TrafficReplay

/// Scenario files: every key read, every mistake reported with its place, the shipped ones valid.
@Suite struct ScenarioTests {
    static let scenarios = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Scenarios")

    @Test func everyKeyIsRead() throws {
        let scenario = try ScenarioDecoder.decode(
            """
            name: all keys
            purchase: {method: PUT, path: /buy/seat, body: '{"seat":1}'}
            account_header: X-User
            pay: false
            time_limit: 30s
            max_connections: 50
            request_timeout: 2s
            populations:
              - name: people
                users: 10
                real: true
                accounts: {shared: 3}
                addresses: {from: 127.9.0.250, count: 10}
                arrival: {poisson: 200}
                start_after: 1s
                attempts: 4
                parallel: 2
                think: 150ms
                honor_retry_after: false
                stop_when_banned: false
                challenges: {solve_after: 2s, success: 0.8}
              - name: bots
                users: 5
                accounts: none
                arrival: {ramp: 2s}
                challenges: never
            """,
            file: "all.yaml"
        )
        #expect(scenario.name == "all keys")
        #expect(scenario.purchase.method == "PUT" && scenario.purchase.path == "/buy/seat" && scenario.purchase.body == #"{"seat":1}"#)
        #expect(scenario.accountHeader == "X-User" && !scenario.pay)
        #expect(scenario.timeLimit == .seconds(30) && scenario.maximumConnections == 50 && scenario.requestTimeout == .seconds(2))
        let people = scenario.populations[0]
        #expect(people.real && people.users == 10 && people.attempts == 4 && people.parallel == 2)
        #expect(people.accounts == .shared(count: 3))
        #expect(people.account(of: 4) == "people-1")
        #expect(people.arrival == .poisson(perSecond: 200) && people.startAfter == .seconds(1))
        #expect(people.think == .milliseconds(150) && !people.honorRetryAfter && !people.stopWhenBanned)
        #expect(people.challenges == .solve(after: .seconds(2), success: 0.8))
        // Addresses skip .255 and .0: 127.9.0.250 … 127.9.0.254, then 127.9.1.1 ….
        #expect((0..<7).map { people.address(of: $0).description } == [
            "127.9.0.250", "127.9.0.251", "127.9.0.252", "127.9.0.253", "127.9.0.254", "127.9.1.1", "127.9.1.2",
        ])
        let bots = scenario.populations[1]
        #expect(bots.accounts == .none && bots.account(of: 0) == nil)
        #expect(bots.arrival == .ramp(.seconds(2)) && bots.challenges == .never)
        // One address per user by default.
        #expect(bots.addresses.count == 5 && bots.address(of: 4).description == "127.1.0.5")
        #expect(scenario.users == 15)
    }

    @Test func everyMistakeIsReportedWithItsPlace() {
        #expect {
            _ = try ScenarioDecoder.decode(
                """
                name: broken
                populations:
                  - name: people
                    users: 0
                    arival: at_once
                    addresses: {from: 10.0.0.1}
                    challenges: {solve_after: 1s, success: 2}
                  - name: people
                    users: 3
                    arrival: {ramp: 1s, poisson: 3}
                  - name: people
                    users: 4
                """,
                file: "broken.yaml"
            )
        } throws: { error in
            let text = "\(error)"
            return text.contains("broken.yaml:4:12")
                && text.contains("unknown key 'arival'") && text.contains("arrival")
                && text.contains("'10.0.0.1' is not an address of 127.0.0.0/8")
                && text.contains("2 is out of range")
                && text.contains("population 'people' is named twice")
                && text.contains("give one of ramp or poisson")
        }
        #expect(throws: ScenarioError.self) { _ = try ScenarioDecoder.decode("name: x\n", file: "x.yaml") }
        #expect(throws: ScenarioError.self) { _ = try ScenarioDecoder.decode("", file: "empty.yaml") }
    }

    @Test func populationsNeverShareSourceAddresses() throws {
        // Without `addresses`, each population gets the range after the previous one's.
        let scenario = try ScenarioDecoder.decode(
            """
            name: defaults
            populations:
              - {name: a, users: 300}
              - {name: b, users: 2}
              - {name: c, users: 1, addresses: {from: 127.9.0.1}}
            """,
            file: "defaults.yaml"
        )
        let ranges = scenario.populations.map(\.addresses)
        #expect(ranges.map(\.description) == ["127.1.0.1-127.1.1.46", "127.1.1.47-127.1.1.48", "127.9.0.1"])
        #expect(!ranges[0].overlaps(ranges[1]) && !ranges[1].overlaps(ranges[2]))
        #expect {
            _ = try ScenarioDecoder.decode(
                """
                name: overlap
                populations:
                  - {name: people, users: 100, addresses: {from: 127.10.0.1}}
                  - {name: bots, users: 10, addresses: {from: 127.10.0.50}}
                """,
                file: "overlap.yaml"
            )
        } throws: { error in
            "\(error)".contains("overlap.yaml:4:5") && "\(error)".contains("population 'bots' (127.10.0.50-127.10.0.59) shares source addresses with 'people' (127.10.0.1-127.10.0.100)")
        }
    }

    @Test func durationsAreBoundedToADay() {
        #expect {
            _ = try ScenarioDecoder.decode(
                """
                name: forever
                time_limit: 25h
                populations:
                  - {name: a, users: 1, think: 48h}
                """,
                file: "forever.yaml"
            )
        } throws: { error in
            "\(error)".contains("forever.yaml:2:13") && "\(error)".contains("longer than a day") && "\(error)".contains("forever.yaml:4:")
        }
    }

    @Test func theShippedScenariosAreValid() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.scenarios.path).filter { $0.hasSuffix(".yaml") }
        #expect(!files.isEmpty)
        for file in files {
            let scenario = try ScenarioDecoder.load(path: Self.scenarios.appendingPathComponent(file).path)
            #expect(scenario.users > 0, "\(file)")
        }
    }

    @Test func arrivalsFollowTheirCurve() {
        var ramp = Population(name: "r", users: 4)
        ramp.arrival = .ramp(.seconds(2))
        ramp.startAfter = .milliseconds(500)
        #expect((0..<4).map { ramp.arrival(of: $0, previous: .zero, uniform: 0.5) } == [.milliseconds(500), .milliseconds(1000), .milliseconds(1500), .milliseconds(2000)])
        var poisson = Population(name: "p", users: 3)
        poisson.arrival = .poisson(perSecond: 10)
        // Exponential gaps: -ln(1 - u) / rate; u = 1 - 1/e gives exactly 100 ms.
        let u = 1 - exp(-1.0)
        let first = poisson.arrival(of: 0, previous: .zero, uniform: u)
        let second = poisson.arrival(of: 1, previous: first, uniform: u)
        #expect(abs((second - first).seconds - 0.1) < 1e-6)
    }
}

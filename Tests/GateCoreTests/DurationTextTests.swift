import GateCore
import Testing

@Suite("DurationText")
struct DurationTextTests {
    @Test("operator durations parse", arguments: [
        ("250ms", Duration.milliseconds(250)), ("30s", .seconds(30)), ("10m", .seconds(600)),
        ("2h", .seconds(7200)), ("1m30s", .seconds(90)), (" 5s ", .seconds(5)), ("0s", .zero),
    ])
    func parses(text: String, expected: Duration) throws {
        #expect(try DurationText.parse(text) == expected)
    }

    @Test("bad durations say what is wrong", arguments: [
        ("10", "has no unit"), ("", "empty"), ("ms", "without a number"), ("5d", "unknown unit"), ("1m5", "has no unit"),
    ])
    func refuses(text: String, problem: String) {
        let error = #expect(throws: DurationText.ParseError.self) { try DurationText.parse(text) }
        #expect(error?.description.contains(problem) == true, "\(error?.description ?? "")")
    }

    @Test("formatting picks the largest whole unit")
    func formats() {
        #expect(DurationText.format(.seconds(600)) == "10m")
        #expect(DurationText.format(.seconds(90)) == "90s")
        #expect(DurationText.format(.milliseconds(250)) == "250ms")
        #expect(DurationText.format(.seconds(7200)) == "2h")
    }
}

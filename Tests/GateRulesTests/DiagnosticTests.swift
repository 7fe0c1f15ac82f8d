import GateRules
import Testing

@Suite("Diagnostic")
struct DiagnosticTests {
    @Test("the description leaves out what is empty", arguments: [
        (Diagnostic(file: "gateway.yaml", line: 12, column: 5, path: "listeners[0].address", message: "bad", hint: "fix it"), "gateway.yaml:12:5: listeners[0].address: bad (hint: fix it)"),
        (Diagnostic(file: "gateway.yaml", line: 1, column: 1, path: "", message: "not valid YAML"), "gateway.yaml:1:1: not valid YAML"),
        (Diagnostic(file: "Rules", line: 0, column: 0, path: "", message: "no *.yaml files in Rules"), "Rules: no *.yaml files in Rules"),
        (Diagnostic(file: "", line: 0, column: 0, path: "routes", message: "no routes", hint: "add one"), "routes: no routes (hint: add one)"),
    ])
    func description(diagnostic: Diagnostic, text: String) {
        #expect(diagnostic.description == text)
    }
}

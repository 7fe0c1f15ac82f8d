import Foundation
import GateChannels
import Logging
import Synchronization
import Testing

/// The JSON log handler: one parseable JSON object per event, metadata as members.
@Suite struct JSONLogHandlerTests {
    final class Lines: Sendable {
        let value = Mutex<[String]>([])
    }

    @Test func eachEventIsOneJSONLineWithItsMetadata() throws {
        let lines = Lines()
        var logger = Logger(label: "spikegate.test") { label in
            JSONLogHandler(label: label, level: .info) { line in lines.value.withLock { $0.append(line) } }
        }
        logger[metadataKey: "gateway"] = "g1"
        logger.debug("not written: below the level")
        logger.info("rules active", metadata: ["version": "0d26948a", "odd": "a \"quoted\"\nline\t\u{1}"])
        logger.warning("backend down", metadata: ["backends": ["a", "b"], "weights": ["a": "1", "b": .stringConvertible(3)]])
        let written = lines.value.withLock { $0 }
        #expect(written.count == 2)
        #expect(written.allSatisfy { $0.hasSuffix("\n") && $0.dropLast().allSatisfy { $0 != "\n" } })
        let first = try #require(try JSONSerialization.jsonObject(with: Data(written[0].utf8)) as? [String: Any])
        #expect(first["level"] as? String == "info" && first["label"] as? String == "spikegate.test")
        #expect(first["msg"] as? String == "rules active" && first["version"] as? String == "0d26948a" && first["gateway"] as? String == "g1")
        #expect(first["odd"] as? String == "a \"quoted\"\nline\t\u{1}")
        let stamp = try #require(first["ts"] as? String)
        #expect(stamp.count == 24 && stamp.hasSuffix("Z") && stamp.contains("T"), "\(stamp)")
        let second = try #require(try JSONSerialization.jsonObject(with: Data(written[1].utf8)) as? [String: Any])
        #expect(second["level"] as? String == "warning")
        #expect(second["backends"] as? [String] == ["a", "b"])
        #expect(second["weights"] as? [String: String] == ["a": "1", "b": "3"])
    }
}

import CoreMetrics
import Foundation
import GateRules
import Logging
import Synchronization

/// Reloads the rule files when they change: the directory is looked at every `interval`
/// (file names, sizes and modification times), and `reloadNow()` does it at once (SIGHUP,
/// admin `POST /rules/reload`).
///
/// The files are read on Swift's concurrency threads, never on an event loop. A bad edit
/// never replaces good rules: the gateway keeps routing with the old ones, and the
/// diagnostics go to the log and to `lastError` (shown by the admin `/rules`).
public final class RulesWatcher: Sendable {
    /// The outcome of the last reload attempt.
    public struct Status: Sendable {
        /// The version routing now.
        public var activeVersion: String
        /// Reloads that were applied and that were refused since the start.
        public var reloads = 0
        public var failedReloads = 0
        /// What was wrong with the last refused edit (`nil` once a good one was applied).
        public var lastError: String?
    }

    private let gateway: Gateway
    private let directory: String
    private let logger: Logger
    private let state: Mutex<(fingerprint: [String], status: Status)>
    private let task: Mutex<Task<Void, Never>?>

    /// Watches `directory` for `gateway`, every `interval`.
    public init(gateway: Gateway, directory: String, interval: Duration = .seconds(1), logger: Logger) {
        self.gateway = gateway
        self.directory = directory
        self.logger = logger
        self.state = Mutex((Self.fingerprint(of: directory), Status(activeVersion: gateway.ruleSet.version)))
        self.task = Mutex(nil)
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                self?.reloadIfChanged()
            }
        }
        self.task.withLock { $0 = task }
    }

    /// The last reload's outcome.
    public var status: Status {
        self.state.withLock { $0.status }
    }

    /// Stops watching.
    public func stop() {
        self.task.withLock { task in
            task?.cancel()
            task = nil
        }
    }

    /// Reloads when a rule file was added, removed or changed since the last look.
    func reloadIfChanged() {
        let fingerprint = Self.fingerprint(of: self.directory)
        let changed = self.state.withLock { state -> Bool in
            guard state.fingerprint != fingerprint else {
                return false
            }
            state.fingerprint = fingerprint
            return true
        }
        if changed {
            self.reloadNow(reason: "rule files changed")
        }
    }

    /// Loads, validates and compiles the rule files now; applies them when they are good.
    /// Returns the new status.
    @discardableResult
    public func reloadNow(reason: String) -> Status {
        do {
            let rules = try RulesLoader.load(directory: self.directory)
            self.gateway.reload(rules)
            self.gateway.metrics.rulesReloaded.increment()
            return self.state.withLock { state in
                state.status.activeVersion = rules.version
                state.status.reloads += 1
                state.status.lastError = nil
                return state.status
            }
        } catch {
            self.gateway.metrics.rulesRefused.increment()
            self.logger.error("rule files refused; the previous rules stay active", metadata: [
                "reason": "\(reason)", "directory": "\(self.directory)", "error": "\(error)",
            ])
            return self.state.withLock { state in
                state.status.failedReloads += 1
                state.status.lastError = "\(error)"
                return state.status
            }
        }
    }

    /// Names, sizes and modification times of the rule files in `directory`.
    static func fingerprint(of directory: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            return ["unreadable"]
        }
        return names.filter(RulesLoader.isRulesFile).sorted().map { name in
            FileStamp.of((directory as NSString).appendingPathComponent(name), as: name)
        }
    }
}

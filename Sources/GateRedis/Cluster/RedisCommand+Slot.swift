import GateCore
import NIOCore

extension RedisCommand {
    /// Commands that name no key: in a Redis Cluster any node may answer them.
    private static let keyless: Set<String> = [
        "ACL", "ASKING", "AUTH", "BGREWRITEAOF", "BGSAVE", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DBSIZE",
        "DEBUG", "DISCARD", "ECHO", "EXEC", "FLUSHALL", "FLUSHDB", "FUNCTION", "HELLO", "INFO", "KEYS", "LASTSAVE",
        "LATENCY", "LOLWUT", "MEMORY", "MONITOR", "MULTI", "PING", "PUBLISH", "QUIT", "RANDOMKEY", "READONLY",
        "READWRITE", "REPLICAOF", "RESET", "ROLE", "SAVE", "SCAN", "SCRIPT", "SELECT", "SENTINEL", "SHUTDOWN",
        "SLAVEOF", "SLOWLOG", "SWAPDB", "TIME", "UNWATCH", "WAIT", "WAITAOF",
    ]

    /// Scripts and functions: `NAME script numkeys key… arg…`.
    private static let scripted: Set<String> = ["EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"]

    /// The Redis Cluster slot of the command's first key, or `nil` for a command without one.
    ///
    /// The first argument is the key for every data command SpikeGate sends (`GET`, `SET`,
    /// `HSET`, `MGET`, `WATCH`, …); scripts name theirs after `numkeys`. A command with several
    /// keys is routed by the first: Redis refuses it (`CROSSSLOT`) unless all share a slot,
    /// which is what the hash tags of SpikeGate's keys are for.
    var slot: Int? {
        let name = self.name
        if Self.keyless.contains(name) {
            return nil
        }
        var index = 1
        if Self.scripted.contains(name) {
            guard self.arguments.count > 3, case .some(let count) = Self.integer(self.arguments[2]), count > 0 else {
                return nil
            }
            index = 3
        }
        guard self.arguments.count > index else {
            return nil
        }
        switch self.arguments[index] {
        case .string(let key):
            return RedisHashSlot.of(key)
        case .integer(let value):
            return RedisHashSlot.of(String(value))
        case .bytes(let buffer):
            return buffer.withUnsafeReadableBytes { raw in
                RedisHashSlot.of(bytes: UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: UInt8.self), count: raw.count))
            }
        }
    }

    private static func integer(_ argument: RedisArgument) -> Int64? {
        switch argument {
        case .integer(let value): value
        case .string(let text): Int64(text)
        case .bytes(let buffer): Int64(String(buffer: buffer))
        }
    }
}

extension RedisCommand {
    /// What a command does to the connection it runs on, beyond its reply.
    enum ConnectionEffect: Sendable, Hashable {
        /// Nothing: it can share a connection with anyone.
        case none
        /// `WATCH`, `UNWATCH`, `MULTI`, `EXEC`, `DISCARD`: transaction state.
        case transaction
        /// Per-connection state the next user would inherit: `SELECT`, `CLIENT SETNAME` and
        /// other `CLIENT` setters, `HELLO`, `AUTH`, `RESET`, `QUIT`, `MONITOR`, the
        /// `SUBSCRIBE` family (after which replies no longer match commands one to one).
        case session
        /// Holds the connection until the server has something: `BLPOP` and kin, `XREAD BLOCK`,
        /// `WAIT`/`WAITAOF` (replica acknowledgements).
        case blocking
    }

    /// How this command affects its connection, decided without allocating for the commands
    /// a gateway sends all day (`GET`, `SET`, `EVALSHA`, …).
    var connectionEffect: ConnectionEffect {
        guard case .string(let name) = self.arguments.first, let first = name.utf8.first else {
            return .none
        }
        func matches(_ candidate: StaticString) -> Bool {
            name.utf8.count == candidate.utf8CodeUnitCount
                && candidate.withUTF8Buffer { expected in
                    zip(name.utf8, expected).allSatisfy { $0 & 0xDF == $1 }
                }
        }
        switch first & 0xDF {
        case UInt8(ascii: "W"):
            if matches("WATCH") {
                return .transaction
            }
            return matches("WAIT") || matches("WAITAOF") ? .blocking : .none
        case UInt8(ascii: "U"):
            if matches("UNWATCH") {
                return .transaction
            }
            return matches("UNSUBSCRIBE") ? .session : .none
        case UInt8(ascii: "M"):
            if matches("MULTI") {
                return .transaction
            }
            return matches("MONITOR") ? .session : .none
        case UInt8(ascii: "E"):
            return matches("EXEC") ? .transaction : .none
        case UInt8(ascii: "D"):
            return matches("DISCARD") ? .transaction : .none
        case UInt8(ascii: "S"):
            return matches("SELECT") || matches("SUBSCRIBE") || matches("SSUBSCRIBE") || matches("SUNSUBSCRIBE")
                ? .session : .none
        case UInt8(ascii: "P"):
            return matches("PSUBSCRIBE") || matches("PUNSUBSCRIBE") ? .session : .none
        case UInt8(ascii: "H"):
            return matches("HELLO") ? .session : .none
        case UInt8(ascii: "A"):
            return matches("AUTH") ? .session : .none
        case UInt8(ascii: "R"):
            return matches("RESET") ? .session : .none
        case UInt8(ascii: "Q"):
            return matches("QUIT") ? .session : .none
        case UInt8(ascii: "C"):
            guard matches("CLIENT") else {
                return .none
            }
            guard self.arguments.count > 1, case .string(let subcommand) = self.arguments[1] else {
                return .session
            }
            switch subcommand.uppercased() {
            case "ID", "INFO", "GETNAME", "LIST", "KILL", "PAUSE", "UNPAUSE", "UNBLOCK":
                return .none
            default:
                return .session
            }
        case UInt8(ascii: "B"):
            return matches("BLPOP") || matches("BRPOP") || matches("BLMOVE") || matches("BLMPOP")
                || matches("BRPOPLPUSH") || matches("BZPOPMIN") || matches("BZPOPMAX") || matches("BZMPOP")
                ? .blocking : .none
        case UInt8(ascii: "X"):
            guard matches("XREAD") || matches("XREADGROUP") else {
                return .none
            }
            let blocks = self.arguments.dropFirst().contains { argument in
                if case .string(let word) = argument {
                    return word.uppercased() == "BLOCK"
                }
                return false
            }
            return blocks ? .blocking : .none
        default:
            return .none
        }
    }

    /// Why this command must not go on the shared connection, or `nil` when it may.
    var sharedConnectionRefusal: RedisError? {
        switch self.connectionEffect {
        case .none:
            return nil
        case .transaction, .session:
            return RedisError(
                code: .unsupportedCommand,
                message: "\(self.name) changes the state of the connection it runs on, and the shared connection carries every caller's commands; run it inside withConnection { }",
                command: self.description
            )
        case .blocking:
            return RedisError(
                code: .unsupportedCommand,
                message: "\(self.name) blocks the connection it runs on, and the shared connection carries every caller's commands; run it inside withConnection { }",
                command: self.description
            )
        }
    }
}

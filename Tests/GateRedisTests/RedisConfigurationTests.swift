import GateRedis
import Testing

@Suite("Redis URLs")
struct RedisConfigurationTests {
    struct Good: Sendable, CustomTestStringConvertible {
        let url: String
        let endpoint: RedisEndpoint
        let username: String?
        let password: String?
        let database: Int
        var testDescription: String { self.url }
    }

    static let good: [Good] = [
        Good(url: "redis://localhost", endpoint: .tcp(host: "localhost", port: 6379), username: nil, password: nil, database: 0),
        Good(url: "redis://127.0.0.1:7000/3", endpoint: .tcp(host: "127.0.0.1", port: 7000), username: nil, password: nil, database: 3),
        Good(url: "redis://:s3cret@h:1/", endpoint: .tcp(host: "h", port: 1), username: nil, password: "s3cret", database: 0),
        Good(url: "redis://alice:p%40ss%3Aw@h:6380/15", endpoint: .tcp(host: "h", port: 6380), username: "alice", password: "p@ss:w", database: 15),
        Good(url: "redis://onlypassword@h", endpoint: .tcp(host: "h", port: 6379), username: nil, password: "onlypassword", database: 0),
        Good(url: "redis://[::1]:6390/2", endpoint: .tcp(host: "::1", port: 6390), username: nil, password: nil, database: 2),
        Good(url: "unix:///run/redis/redis.sock", endpoint: .unix(path: "/run/redis/redis.sock"), username: nil, password: nil, database: 0),
        Good(url: "unix://bob:pw@/tmp/r.sock?db=4", endpoint: .unix(path: "/tmp/r.sock"), username: "bob", password: "pw", database: 4),
        Good(url: "unix:///run/redis@6380/redis.sock", endpoint: .unix(path: "/run/redis@6380/redis.sock"), username: nil, password: nil, database: 0),
        Good(url: "redis://user:@h", endpoint: .tcp(host: "h", port: 6379), username: "user", password: nil, database: 0),
    ]

    @Test("good URLs", arguments: good)
    func parses(good: Good) throws {
        let configuration = try RedisConfiguration(url: good.url)
        #expect(configuration.endpoint == good.endpoint)
        #expect(configuration.username == good.username)
        #expect(configuration.password == good.password)
        #expect(configuration.database == good.database)
    }

    @Test func aTimeoutParameterSetsTheCommandTimeout() throws {
        #expect(try RedisConfiguration(url: "redis://h:6379?timeout=250ms").commandTimeout == .milliseconds(250))
        #expect(try RedisConfiguration(url: "redis://h:6379").commandTimeout == .milliseconds(50))
    }

    @Test("bad URLs say what is wrong and never echo the password", arguments: [
        ("http://h", "unknown scheme"),
        ("rediss://h", "unknown scheme"),
        ("redis://h:0", "port '0'"),
        ("redis://h:99999", "port '99999'"),
        ("redis://h:abc", "port 'abc'"),
        ("redis://h/x", "database 'x'"),
        ("redis://", "missing host"),
        ("redis://[::1", "unclosed '['"),
        ("unix://", "missing socket path"),
        ("unix:///tmp/r.sock?db=-1", "db '-1'"),
        ("unix:///tmp/r.sock?tls=1", "unknown parameter 'tls'"),
        ("redis://h?timeout=50", "timeout: '50' is not a duration"),
        ("redis://h?timeout=0ms", "timeout must be above zero"),
        ("redis://u:%zz@h", "percent-encoding in the password"),
        ("redis://u:topsecret@h:70000", "port '70000'"),
        ("redis://::1", "IPv6 host must be in brackets"),
        ("redis://h/2@evil", "database '2@evil'"),
        ("unix:///tmp/r.sock?password=topsecret&tls=1", "unknown parameter 'tls'"),
    ])
    func refuses(url: String, problem: String) {
        let error = #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
        #expect(error?.code == .invalidURL)
        #expect(error?.message.contains(problem) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("topsecret") == false)
    }
}

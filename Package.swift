// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "SpikeGate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "spikegate", targets: ["spikegate"]),
        .library(name: "GateCore", targets: ["GateCore"]),
        .library(name: "GateRedis", targets: ["GateRedis"]),
        .library(name: "GateRules", targets: ["GateRules"]),
        .library(name: "TicketNode", targets: ["TicketNode"]),
        .library(name: "TrafficReplay", targets: ["TrafficReplay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        // Rule and config files: its Node API keeps every value's line and column for diagnostics.
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // SIGTERM/SIGINT → graceful shutdown of the long-running commands.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // TLS on the gateway's listeners (BoringSSL), and the demo's self-signed certificate.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        // Metrics: the swift-metrics API, exported in Prometheus' text format on the admin listener.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Latency percentiles of replayed traffic (HdrHistogram: bounded memory, 3 significant
        // digits at any rate, mergeable per population).
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // libhiredis from Debian (libhiredis-dev): its RESP reader parses every reply.
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"]), .brew(["hiredis"])]
        ),
        // Pure decisions: no NIO, no sockets, no files; time and randomness come in as parameters.
        .target(
            name: "GateCore",
            // Crypto for challenges and pass tokens (SHA-256, HMAC): computation only, no I/O.
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // YAML → decoded files → every diagnostic → compiled rules and the gateway's configuration.
        .target(
            name: "GateRules",
            dependencies: [
                "GateCore",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "GateRedis",
            dependencies: [
                "CHiredis",
                "GateCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // NIO pieces the gateway and the ticket node share: connection draining, line logs.
        .target(
            name: "GateChannels",
            dependencies: [
                "GateCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The gateway: listeners, HTTP proxying, upstream pools, health checks, admin server.
        .target(
            name: "GateProxy",
            dependencies: [
                "GateChannels",
                "GateCore",
                "GateRedis",
                "GateRules",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // The reference ticket backend: local stock share, the sale's Lua scripts, HTTP API.
        .target(
            name: "TicketNode",
            dependencies: [
                "GateChannels",
                "GateCore",
                "GateRedis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Scenario files and captured access logs replayed against a live gateway; the report.
        .target(
            name: "TrafficReplay",
            dependencies: [
                "GateCore",
                "GateRedis",
                "GateRules",
                "TicketNode",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "spikegate",
            dependencies: [
                "GateCore",
                "GateProxy",
                "GateRedis",
                "GateRules",
                "TicketNode",
                "TrafficReplay",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // Real processes for the tests: a redis-server on a free port or a unix socket.
        .target(
            name: "GateTestSupport",
            dependencies: [
                "GateRedis",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/GateTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GateCoreTests",
            dependencies: ["GateCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GateRulesTests",
            dependencies: ["GateCore", "GateRules"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GateRedisTests",
            dependencies: [
                "GateCore",
                "GateRedis",
                "GateTestSupport",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TicketNodeTests",
            dependencies: [
                "GateChannels",
                "GateCore",
                "GateRedis",
                "TicketNode",
                "GateTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GateProxyTests",
            dependencies: [
                .product(name: "Prometheus", package: "swift-prometheus"),
                "GateChannels",
                "GateCore",
                "GateProxy",
                "GateRules",
                "GateTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TrafficReplayTests",
            dependencies: [
                "GateCore",
                "GateRedis",
                "GateRules",
                "TicketNode",
                "TrafficReplay",
                "GateTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SpikegateTests",
            dependencies: [
                "spikegate",
                "GateCore",
                "GateRedis",
                "GateTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)

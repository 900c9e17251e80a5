// swift-tools-version:6.1
import PackageDescription

let upcomingFeatures: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "custody",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "custody", targets: ["custody"]),
        .library(name: "CustodyCore", targets: ["CustodyCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .target(
            name: "CustodyCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto")
            ],
            swiftSettings: upcomingFeatures
        ),
        .systemLibrary(
            name: "CArchive",
            pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]
        ),
        .target(
            name: "CustodyArchive",
            dependencies: ["CArchive", "CustodyCore"],
            swiftSettings: upcomingFeatures
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "CustodyScan",
            dependencies: ["CArchive", "CZlib", "CustodyCore"],
            swiftSettings: upcomingFeatures
        ),
        .target(
            name: "CustodyPolicy",
            dependencies: [
                "CustodyCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: upcomingFeatures
        ),
        .target(
            name: "CustodyStorage",
            dependencies: ["CustodyCore"],
            swiftSettings: upcomingFeatures
        ),
        .target(
            name: "CustodyStore",
            dependencies: [
                "CustodyCore",
                "CustodyStorage",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: upcomingFeatures
        ),
        .target(
            name: "CustodyS3",
            dependencies: [
                "CustodyCore",
                "CustodyStorage",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: upcomingFeatures
        ),
        .target(
            name: "CustodyPostgres",
            dependencies: [
                "CustodyCore",
                "CustodyStorage",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
            ],
            swiftSettings: upcomingFeatures
        ),
        .target(
            name: "CustodyRegistry",
            dependencies: [
                "CustodyArchive",
                "CustodyCore",
                "CustodyPolicy",
                "CustodyScan",
                "CustodyStorage",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: upcomingFeatures
        ),
        .target(
            name: "CustodyServer",
            dependencies: [
                "CustodyCore",
                "CustodyPolicy",
                "CustodyScan",
                "CustodyStorage",
                "CustodyStore",
                "CustodyRegistry",
                "CustodyPostgres",
                "CustodyS3",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
            ],
            swiftSettings: upcomingFeatures
        ),
        .target(
            name: "CustodyClient",
            dependencies: [
                "CustodyCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: upcomingFeatures
        ),
        .executableTarget(
            name: "custody",
            dependencies: [
                "CustodyCore",
                "CustodyScan",
                "CustodyArchive",
                "CustodyPolicy",
                "CustodyClient",
                "CustodyServer",
                "CustodyRegistry",
                "CustodyStorage",
                "CustodyStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: upcomingFeatures
        ),
        .target(
            name: "CustodyTestSupport",
            dependencies: [
                "CustodyCore", "CustodyStorage",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Tests/CustodyTestSupport",
            swiftSettings: upcomingFeatures
        ),
        .testTarget(
            name: "CustodyCoreTests",
            dependencies: ["CustodyCore", "CustodyTestSupport"],
            resources: [.copy("Vectors")],
            swiftSettings: upcomingFeatures
        ),
        .testTarget(
            name: "CustodyArchiveTests",
            dependencies: ["CustodyArchive", "CustodyCore", "CustodyTestSupport"],
            swiftSettings: upcomingFeatures
        ),
        .testTarget(
            name: "CustodyScanTests",
            dependencies: ["CustodyScan", "CustodyCore", "CustodyTestSupport"],
            swiftSettings: upcomingFeatures
        ),
        .testTarget(
            name: "CustodyPolicyTests",
            dependencies: ["CustodyPolicy", "CustodyCore", "CustodyTestSupport"],
            swiftSettings: upcomingFeatures
        ),
        .testTarget(
            name: "CustodyClientTests",
            dependencies: [
                "CustodyClient", "CustodyCore", "CustodyTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: upcomingFeatures
        ),
        .testTarget(
            name: "CustodyStoreTests",
            dependencies: ["CustodyStore", "CustodyStorage", "CustodyCore", "CustodyTestSupport"],
            swiftSettings: upcomingFeatures
        ),
        .testTarget(
            name: "CustodyS3Tests",
            dependencies: [
                "CustodyS3", "CustodyCore", "CustodyRegistry", "CustodyStorage", "CustodyTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: upcomingFeatures
        ),
        .testTarget(
            name: "CustodyPostgresTests",
            dependencies: [
                "CustodyPostgres", "CustodyCore", "CustodyStorage", "CustodyTestSupport",
                .product(name: "Logging", package: "swift-log"), .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: upcomingFeatures
        ),
        .testTarget(
            name: "CustodyRegistryTests",
            dependencies: ["CustodyRegistry", "CustodyStorage", "CustodyCore", "CustodyTestSupport"],
            swiftSettings: upcomingFeatures
        ),
        .testTarget(
            name: "CustodyServerTests",
            dependencies: [
                "CustodyServer", "CustodyStore", "CustodyStorage", "CustodyRegistry", "CustodyCore", "CustodyPolicy", "CustodyTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: upcomingFeatures
        ),
        .testTarget(
            name: "CustodyCLITests",
            dependencies: [
                "custody", "CustodyCore", "CustodyS3", "CustodyTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: upcomingFeatures
        ),
    ],
    swiftLanguageModes: [.v6]
)

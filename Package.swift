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
    ],
    targets: [
        .target(
            name: "CustodyCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto")
            ],
            swiftSettings: upcomingFeatures
        ),
        .executableTarget(
            name: "custody",
            dependencies: [
                "CustodyCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: upcomingFeatures
        ),
        .testTarget(
            name: "CustodyCoreTests",
            dependencies: ["CustodyCore"],
            resources: [.copy("Vectors")],
            swiftSettings: upcomingFeatures
        ),
        .testTarget(
            name: "CustodyCLITests",
            dependencies: ["custody", "CustodyCore"],
            swiftSettings: upcomingFeatures
        ),
    ],
    swiftLanguageModes: [.v6]
)

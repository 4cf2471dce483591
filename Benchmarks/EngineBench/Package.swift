// swift-tools-version:6.0
// The engine's figures (issue 8): the sync API's cost per call on loopback,
// and what concurrency on one context buys behind a delaying proxy.
// Built in release by Scripts/bench --engine; it uses only LibNFS's public API.
import PackageDescription

let package = Package(
    name: "EngineBench",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "swift-libnfs", path: "../..")],
    targets: [
        .executableTarget(name: "EngineBench", dependencies: [.product(name: "LibNFS", package: "swift-libnfs")]),
    ],
    swiftLanguageModes: [.v6]
)

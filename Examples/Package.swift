// swift-tools-version:6.0
// A standalone package that uses LibNFS the way another project would.
// Scripts/test builds and runs it against the test server, so it cannot rot.
import PackageDescription

let package = Package(
    name: "swift-libnfs-examples",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Another project would write: .package(url: "https://github.com/swift-libnfs/swift-libnfs", from: "0.1.0")
        .package(name: "swift-libnfs", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "ShareReport",
            dependencies: [.product(name: "LibNFS", package: "swift-libnfs")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

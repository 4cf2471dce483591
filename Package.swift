// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "swift-libnfs",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LibNFS", targets: ["LibNFS"]),
        .executable(name: "nfs-cp", targets: ["nfs-cp"]),
        .executable(name: "nfs-check", targets: ["nfs-check"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibNFS",
            path: "CLibNFS",
            pkgConfig: "libnfs",
            providers: [.apt(["libnfs-dev"]), .brew(["libnfs"])]
        ),
        .target(
            name: "LibNFS",
            dependencies: [
                "CLibNFS",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "NFSCommandLine",
            dependencies: [
                "LibNFS",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "nfs-cp",
            dependencies: [
                "LibNFS", "NFSCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "nfs-check",
            dependencies: [
                "LibNFS", "NFSCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Finds the live server that Scripts/test starts; shared by the test targets.
        .target(
            name: "NFSTestSupport",
            dependencies: ["LibNFS", .product(name: "SystemPackage", package: "swift-system")],
            path: "Tests/NFSTestSupport"
        ),
        .testTarget(
            name: "LibNFSTests",
            dependencies: ["LibNFS", "NFSTestSupport", .product(name: "SystemPackage", package: "swift-system")]
        ),
        // These run the built executables; depending on them makes `swift test` build them.
        .testTarget(
            name: "NFSCopyTests",
            dependencies: ["nfs-cp", "LibNFS", "NFSCommandLine", "NFSTestSupport"]
        ),
        .testTarget(
            name: "NFSCheckTests",
            dependencies: ["nfs-check", "LibNFS", "NFSTestSupport", .product(name: "SystemPackage", package: "swift-system")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

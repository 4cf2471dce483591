import Foundation
import LibNFS
import Testing

/// The live NFS server that `Scripts/test` starts, described by the environment:
/// `NFS_TEST_URL` (the export's `nfs://` URL) and `NFS_TEST_EXPORT` (the same directory on local disk).
public struct TestServer: Sendable {
    public let url: NFSURL
    public let export: String

    public static let environment = ProcessInfo.processInfo.environment

    /// Tests that need the server run when it is configured, and always under CI,
    /// where a missing server must fail rather than skip.
    public static var shouldRun: Bool {
        environment["NFS_TEST_URL"] != nil || environment["CI"] != nil
    }

    public static let skipReason: Comment = "no NFS server configured: run Scripts/test, or eval \"$(Scripts/nfs-server start)\" first"

    /// The trait for suites that need the live server: they run when it is
    /// configured and under CI (where its absence fails), and skip with a reason elsewhere.
    public static var required: ConditionTrait { .enabled(if: shouldRun, skipReason) }

    /// The NFS protocol version the server URL asks for (3 unless `version=4`).
    public var protocolVersion: Int { url.argument("version").flatMap { Int($0) } ?? 3 }

    public static func require() throws -> TestServer {
        guard let url = environment["NFS_TEST_URL"], let export = environment["NFS_TEST_EXPORT"] else {
            throw TestServerMissing()
        }
        return TestServer(url: try NFSURL(url), export: export)
    }

    /// A fresh directory in the export, named uniquely for one test, and removed by `cleanUp()`.
    public func scratch(_ label: String = "t") throws -> Scratch {
        let name = "\(label)-\(UUID().uuidString.prefix(8))"
        let local = export + "/" + name
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o777])
        return Scratch(server: self, name: name, local: local)
    }

    public func mount(_ options: NFSOptions = .init()) throws -> NFSContext {
        try NFSContext(url: url.description, options: options)
    }
}

public struct TestServerMissing: Error, CustomStringConvertible {
    public var description: String {
        "CI is set but NFS_TEST_URL/NFS_TEST_EXPORT are not: the NFS server was not started (Scripts/test starts it)"
    }
}

/// One test's directory, seen both through NFS (``path``) and on local disk (``local``).
public struct Scratch: Sendable {
    public let server: TestServer
    public let name: String
    public let local: String

    /// The directory's path relative to the export root, as NFS calls take it.
    public var path: String { "/" + name }
    public func path(_ child: String) -> String { path + "/" + child }
    public func local(_ child: String) -> String { local + "/" + child }
    /// A URL for the directory (or a child), for context-free opens and the CLI tools.
    public func url(_ child: String? = nil) -> NFSURL {
        let dir = server.url.appending(name)
        return child.map { dir.appending($0) } ?? dir
    }

    public func writeLocal(_ child: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: local(child)))
    }

    public func readLocal(_ child: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: local(child))))
    }

    public func cleanUp() {
        // Tests may leave read-only modes behind; make everything removable first.
        if let e = FileManager.default.enumerator(atPath: local) {
            for case let item as String in e {
                try? FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: local(item))
            }
        }
        try? FileManager.default.removeItem(atPath: local)
    }
}

public func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    var bytes = [UInt8](repeating: 0, count: count)
    var i = 0
    while i + 8 <= count {
        let word = generator.next()
        withUnsafeBytes(of: word) { for j in 0..<8 { bytes[i + j] = $0[j] } }
        i += 8
    }
    while i < count { bytes[i] = UInt8.random(in: 0...255); i += 1 }
    return bytes
}

extension NFSFileHandle {
    /// Reads to end of file in `size`-byte reads, as a caller looping over `read(_:)` would.
    public func readInPieces(of size: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        while true {
            let piece = try read(size)
            if piece.isEmpty { return out }
            out += piece
        }
    }
}

/// `count` bytes fast enough for gigabytes in a debug build: one random MiB,
/// repeated with each MiB's index written into its first eight bytes, so that
/// a MiB written in the wrong place still shows.
public func largeDistinctBytes(_ count: Int) -> [UInt8] {
    let block = randomBytes(1 << 20)
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count)
    var index: UInt64 = 0
    while bytes.count < count {
        var piece = block[..<min(block.count, count - bytes.count)]
        withUnsafeBytes(of: index.littleEndian) { stamp in
            for j in 0..<min(8, piece.count) { piece[piece.startIndex + j] = stamp[j] }
        }
        bytes += piece
        index += 1
    }
    return bytes
}

import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File names as bytes, which need not be UTF-8, and the local side of them:
/// the oracle for byte-exact names is the export directory read with the
/// platform's own calls, not LibNFS.
public enum ByteName {
    /// A name from raw bytes, such as `[0x63, 0x61, 0x66, 0xE9]` (Latin-1 `café`).
    public static func component(_ bytes: [UInt8]) -> FilePath.Component {
        FilePath.Component(platformString: bytes.map(CChar.init(bitPattern:)) + [0])!
    }

    public static func bytes(_ component: FilePath.Component) -> [UInt8] {
        component.withPlatformString(cStringBytes)
    }

    public static func bytes(of path: FilePath) -> [UInt8] {
        path.withPlatformString(cStringBytes)
    }

    private static func cStringBytes(_ string: UnsafePointer<CChar>) -> [UInt8] {
        UnsafeRawBufferPointer(start: string, count: strlen(string)).map { $0 }
    }

    /// Writes `contents` to the local file `path`, creating or truncating it.
    public static func writeLocal(_ path: FilePath, _ contents: [UInt8]) throws {
        let fd = try FileDescriptor.open(path, .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite, .groupRead, .otherRead])
        try fd.closeAfter { _ = try fd.writeAll(contents) }
    }

    /// The bytes of the local file `path`, or nil when there is none.
    public static func readLocal(_ path: FilePath) -> [UInt8]? {
        guard let fd = try? FileDescriptor.open(path, .readOnly) else { return nil }
        defer { try? fd.close() }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            guard let n = try? chunk.withUnsafeMutableBytes({ try fd.read(into: $0) }) else { return nil }
            if n == 0 { return out }
            out += chunk[..<n]
        }
    }

    /// The names in the local directory `path`, as bytes, without `.` and `..`.
    public static func listLocal(_ path: FilePath) -> Set<[UInt8]> {
        guard let dir = path.withPlatformString({ opendir($0) }) else { return [] }
        defer { closedir(dir) }
        var names: Set<[UInt8]> = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: UInt8.self, capacity: 256) { Array(UnsafeBufferPointer(start: $0, count: strlen(UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)))) }
            }
            if name != [0x2E] && name != [0x2E, 0x2E] { names.insert(name) }
        }
        return names
    }

    public static func mkdirLocal(_ path: FilePath) throws {
        let rc = path.withPlatformString { mkdir($0, 0o777) }
        if rc != 0 { throw Errno(rawValue: errno) }
    }
}

extension Scratch {
    /// The scratch directory on local disk as a path.
    public var localPath: FilePath { FilePath(local) }
    /// The scratch directory as NFS calls take it.
    public var filePath: FilePath { FilePath(path) }
}

import LibNFS
import SystemPackage

/// A mounted share as one side of a copy.
public struct NFSFileSystem: CopyFileSystem {
    public let context: NFSContext
    /// The URL the context mounted; displayed paths are built on it.
    public let root: NFSURL

    public init(context: NFSContext) {
        self.context = context
        self.root = context.parsedURL
    }

    public func display(_ path: FilePath) -> String {
        let base = root.path.hasSuffix("/") ? String(root.path.dropLast()) : root.path
        let tail = path.components.isEmpty ? "" : FilePath(root: "/", path.components).escapedDescription
        return "nfs://\(root.server)\(base)\(tail)"
    }

    /// Runs `body`, rewording an ``NFSError`` with the full URL of the path it names.
    func translate<T>(_ path: FilePath, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as NFSError {
            throw FileOperationError(error, displayPath: error.url ?? display(error.path ?? path))
        }
    }

    public func info(_ path: FilePath, followSymlinks: Bool) throws -> FileInfo? {
        let found = try translate(path) {
            followSymlinks ? try context.statIfPresent(path) : try lstatIfPresent(path)
        }
        return found.map(FileInfo.init)
    }

    public func entries(_ path: FilePath) throws -> [(name: FilePath.Component, info: FileInfo?)] {
        try translate(path) { try context.scandir(path) }.map { ($0.name, FileInfo($0.stat)) }
    }

    private func lstatIfPresent(_ path: FilePath) throws -> NFSStat? {
        do { return try context.lstat(path) } catch let error as NFSError where error.code == .noSuchFileOrDirectory {
            return nil
        }
    }

    public func list(_ path: FilePath) throws -> [FilePath.Component] { try translate(path) { try context.listdir(path) } }
    public func makeDirectory(_ path: FilePath, permissions: Int) throws { try translate(path) { try context.mkdir(path, mode: permissions) } }
    public func makeSymlink(_ target: FilePath, at path: FilePath) throws { try translate(path) { try context.symlink(target, at: path) } }
    public func readSymlink(_ path: FilePath) throws -> FilePath { try translate(path) { try context.readlink(path) } }
    public func rename(_ from: FilePath, to: FilePath) throws { try translate(from) { try context.rename(from, to: to) } }
    public func remove(_ path: FilePath) throws { try translate(path) { try context.unlink(path) } }
    public func removeDirectory(_ path: FilePath) throws { try translate(path) { try context.rmdir(path) } }
    public func setPermissions(_ path: FilePath, _ permissions: Int) throws { try translate(path) { try context.chmod(path, mode: permissions) } }
    public func setOwner(_ path: FilePath, uid: Int, gid: Int) throws { try translate(path) { try context.chown(path, uid: uid, gid: gid) } }
    public func setTimes(_ path: FilePath, access: NFSTimestamp, modification: NFSTimestamp) throws {
        try translate(path) { try context.utimes(path, accessTime: access, modificationTime: modification) }
    }
    public func openRead(_ path: FilePath) throws -> any FileReader {
        NFSReader(file: try translate(path) { try context.open(path) }, fileSystem: self)
    }
    public func createExclusive(_ path: FilePath, permissions: Int) throws -> any FileWriter {
        NFSWriter(file: try translate(path) { try context.open(path, mode: "x", permissions: permissions) }, fileSystem: self)
    }
    public func createTruncating(_ path: FilePath, permissions: Int) throws -> any FileWriter {
        NFSWriter(file: try translate(path) { try context.open(path, mode: "w", permissions: permissions) }, fileSystem: self)
    }
    /// Several RPCs of the server's largest size: the library sends a chunk's
    /// READs or WRITEs together, so this many are in flight for one file.
    public var chunkSize: Int { max(context.readSize, context.writeSize) * Self.requestsPerChunk }
    static let requestsPerChunk = 4
}

extension FileInfo {
    init(_ st: NFSStat) {
        let kind: FileInfo.Kind = switch st.type {
        case .regular: .file
        case .directory: .directory
        case .symbolicLink: .symlink
        default: .other
        }
        self.init(kind: kind, size: st.size, permissions: Int(st.mode & 0o7777), uid: Int(st.uid), gid: Int(st.gid),
                  accessTime: st.accessTime, modificationTime: st.modificationTime)
    }
}

struct NFSReader: FileReader {
    let file: NFSFileHandle
    let fileSystem: NFSFileSystem
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try fileSystem.translate(file.name) { try file.read(into: buffer) }
    }
    func close() throws { try fileSystem.translate(file.name) { try file.close() } }
}

struct NFSWriter: FileWriter {
    let file: NFSFileHandle
    let fileSystem: NFSFileSystem
    func write(_ buffer: UnsafeRawBufferPointer) throws { try fileSystem.translate(file.name) { try file.write(raw: buffer) } }
    func skip(_ count: Int) throws { try fileSystem.translate(file.name) { _ = try file.seek(Int64(count), whence: .current) } }
    func setSize(_ size: UInt64) throws { try fileSystem.translate(file.name) { try file.truncate(size) } }
    func setPermissions(_ permissions: Int) throws {
        try fileSystem.translate(file.name) { try file.chmod(mode: permissions) }
    }
    var connectionIdentity: UInt64? { file.context.connectionIdentity }
    func close() throws { try fileSystem.translate(file.name) { try file.close() } }
}

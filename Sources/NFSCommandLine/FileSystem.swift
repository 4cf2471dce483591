import LibNFS

/// What the copy engine needs to know about a file, from either side.
public struct FileInfo: Sendable {
    public enum Kind: Sendable { case file, directory, symlink, other }
    public var kind: Kind
    public var size: UInt64
    public var permissions: Int
    public var uid: Int
    public var gid: Int
    public var accessTime: NFSTimestamp
    public var modificationTime: NFSTimestamp
}

/// A readable open file.
public protocol FileReader: Sendable {
    /// Fills `buffer` from the current position; returns 0 only at end of file.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    func close() throws
}

/// A writable open file; writes write everything or throw.
public protocol FileWriter: Sendable {
    func write(_ buffer: UnsafeRawBufferPointer) throws
    /// Writes at `offset`, independent of any position.
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws
    /// Sends everything to stable storage.
    func sync() throws
    func close() throws
}

/// The operations of one side of a copy: a local directory tree or a mounted NFS share.
/// Paths are the side's own (absolute local paths, or paths within the export).
public protocol CopyFileSystem: Sendable {
    /// How a path is shown to the user (`/tmp/x` or `nfs://host/export/x`).
    func display(_ path: String) -> String
    /// lstat-like: nil when nothing is there.
    func info(_ path: String, followSymlinks: Bool) throws -> FileInfo?
    func list(_ path: String) throws -> [String]
    func makeDirectory(_ path: String, permissions: Int) throws
    func makeSymlink(_ target: String, at path: String) throws
    func readSymlink(_ path: String) throws -> String
    func rename(_ from: String, to: String) throws
    func remove(_ path: String) throws
    func setPermissions(_ path: String, _ permissions: Int) throws
    func setOwner(_ path: String, uid: Int, gid: Int) throws
    func setTimes(_ path: String, access: NFSTimestamp, modification: NFSTimestamp) throws
    func openRead(_ path: String) throws -> any FileReader
    /// Creates a new file that must not exist yet (`O_EXCL`).
    func createExclusive(_ path: String, permissions: Int) throws -> any FileWriter
    /// Opens for writing, creating or truncating.
    func createTruncating(_ path: String, permissions: Int) throws -> any FileWriter
    /// Opens an existing file for writing, changing nothing (a second writer of a striped copy).
    func openWrite(_ path: String) throws -> any FileWriter
    /// How many writers a large file should be striped over: concurrent RPCs help a remote file, not a local one.
    var writeStreams: Int { get }
    /// The preferred size of one read or write.
    var chunkSize: Int { get }
}

extension CopyFileSystem {
    public func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}

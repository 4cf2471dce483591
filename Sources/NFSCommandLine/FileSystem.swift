@_spi(Handles) import LibNFS
import SystemPackage

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
    /// The file's NFSv3 handle, when a listing gave it: a small file is then read with no lookup at all.
    var handle: NFSObjectHandle? = nil
}

/// The attributes a copy sets on what it made: what is nil stays as it is.
public struct FileAttributes: Sendable {
    public var permissions: Int?
    public var owner: (uid: Int, gid: Int)?
    public var times: (access: NFSTimestamp, modification: NFSTimestamp)?
    public init(permissions: Int? = nil, owner: (uid: Int, gid: Int)? = nil,
                times: (access: NFSTimestamp, modification: NFSTimestamp)? = nil) {
        self.permissions = permissions
        self.owner = owner
        self.times = times
    }
    public var isEmpty: Bool { permissions == nil && owner == nil && times == nil }
}

/// A readable open file.
public protocol FileReader: Sendable {
    /// Fills `buffer` from the current position; returns 0 only at end of file.
    func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int
    func close() async throws
    /// Says that the file will be read whole, in order, and is `size` bytes long.
    func willReadWhole(size: UInt64)
}

extension FileReader {
    public func willReadWhole(size: UInt64) {}
}

/// A reader that can write its whole file into a local one by itself, with none of the
/// transfer's buffers between them (an NFS file read by handle: see `NFSReader`).
protocol DescriptorCopying: FileReader {
    /// Whether ``copy(size:to:progress:)`` can run for this file.
    var copiesToDescriptors: Bool { get }
    /// Writes the file's `size` bytes at the same offsets of `descriptor`, adding each
    /// piece to `progress` and checking ``Interrupt`` between pieces.
    /// - Throws: ``SourceChanged`` when the file does not end at `size`; the `Errno` of a
    ///   failed write to `descriptor`, for the caller to name its path.
    func copy(size: UInt64, to descriptor: FileDescriptor, progress: ProgressLine) async throws
}

/// A writable open file; writes write everything or throw.
public protocol FileWriter: Sendable {
    func write(_ buffer: UnsafeRawBufferPointer) async throws
    /// Moves the position `count` bytes on without writing them (a hole, where the file system keeps holes).
    func skip(_ count: Int) async throws
    /// Sets the file's size: extends it past a hole left at its end by ``skip(_:)``.
    func setSize(_ size: UInt64) async throws
    /// Sets the open file's permission bits (one SETATTR on NFS, no lookups).
    func setPermissions(_ permissions: Int) async throws
    /// Which connection the writes go over (NFS); it changes when the client reconnects. nil for local files.
    var connectionIdentity: UInt64? { get }
    /// Closes the file; on NFS this first sends buffered writes and commits
    /// them to stable storage (libnfs's close of a written file is a COMMIT).
    func close() async throws
}

/// The operations of one side of a copy: a local directory tree or a mounted NFS share.
/// Every call suspends its task rather than blocking its thread: NFS calls use
/// the library's async API, local ones run on ``LocalThreads``.
/// Paths are the side's own (absolute local paths, or paths within the export),
/// as bytes: names that are not UTF-8 are copied as they are.
public protocol CopyFileSystem: Sendable {
    /// How a path is shown to the user (`/tmp/x` or `nfs://host/export/x`),
    /// with bytes that are not UTF-8 escaped (`caf\xE9.txt`).
    func display(_ path: FilePath) -> String
    /// lstat-like: nil when nothing is there.
    func info(_ path: FilePath, followSymlinks: Bool) async throws -> FileInfo?
    func list(_ path: FilePath) async throws -> [FilePath.Component]
    /// The entries of a directory with what lstat would say of each (nil for
    /// one that vanished between the listing and its lstat); on NFS one
    /// READDIRPLUS exchange, with no lookup per entry.
    func entries(_ path: FilePath) async throws -> [(name: FilePath.Component, info: FileInfo?)]
    func makeDirectory(_ path: FilePath, permissions: Int) async throws
    func makeSymlink(_ target: FilePath, at path: FilePath) async throws
    func readSymlink(_ path: FilePath) async throws -> FilePath
    func rename(_ from: FilePath, to: FilePath) async throws
    func remove(_ path: FilePath) async throws
    /// Removes an empty directory.
    func removeDirectory(_ path: FilePath) async throws
    /// Sets what `attributes` gives on `path` (which is not a link), in one go where
    /// the side can: on NFSv3 one SETATTR, on the handle of the file `writer` wrote
    /// (it may be closed) or of the directory or file found by handle, where path calls
    /// walk the path once per attribute; locally one hop to ``LocalThreads``.
    func setAttributes(_ path: FilePath, _ attributes: FileAttributes, writtenBy writer: (any FileWriter)?) async throws
    func openRead(_ path: FilePath) async throws -> any FileReader
    /// Creates a new file that must not exist yet (`O_EXCL`).
    func createExclusive(_ path: FilePath, permissions: Int) async throws -> any FileWriter
    /// ``openRead(_:)`` for a file as planning found it (on NFS a small one is read
    /// by its handle: no path walk, no ACCESS, and no lookup at all when its listing gave the handle).
    func openRead(_ path: FilePath, as found: FileInfo) async throws -> any FileReader
    /// ``createExclusive(_:permissions:)`` for a file about to receive `expectedSize`
    /// bytes (on NFS a small one is created in its directory's handle and written stably: no COMMIT).
    func createExclusive(_ path: FilePath, permissions: Int, expectedSize: UInt64) async throws -> any FileWriter
    /// Opens for writing, creating or truncating.
    func createTruncating(_ path: FilePath, permissions: Int) async throws -> any FileWriter
    /// The preferred size of one read or write.
    var chunkSize: Int { get }
}

extension CopyFileSystem {
    public func openRead(_ path: FilePath, as found: FileInfo) async throws -> any FileReader {
        try await openRead(path)
    }

    public func createExclusive(_ path: FilePath, permissions: Int, expectedSize: UInt64) async throws -> any FileWriter {
        try await createExclusive(path, permissions: permissions)
    }
}

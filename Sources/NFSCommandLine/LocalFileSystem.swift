import LibNFS
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed step of a copy on either side, with the path as the user wrote it:
/// `cannot open nfs://h/x/y: No such file or directory`.
public struct FileOperationError: Error, CustomStringConvertible {
    public var operation: String
    /// The errno behind it, when there is one (a lost connection is `ECONNRESET`).
    public var code: Errno?
    /// The path or URL as shown to the user.
    public var path: String
    public var reason: String
    /// libnfs's own text, shown after the reason under its own label.
    public var detail: String?

    public init(operation: String, path: String, reason: String, detail: String? = nil) {
        self.operation = operation; self.path = path; self.reason = reason; self.detail = detail
    }
    init(code: Errno, operation: String, path: FilePath) {
        self.init(operation: operation, path: path.escapedDescription, reason: code.description)
        self.code = code
    }
    /// Rewords an ``NFSError`` with its path shown as `displayPath` (a full URL),
    /// keeping this package's explanation in the reason and libnfs's text as ``detail``.
    public init(_ error: NFSError, displayPath: String) {
        self.init(operation: error.operation, path: displayPath, reason: error.explanation, detail: error.libnfsMessage)
        self.code = error.code
    }
    /// `cannot read nfs://h/x/big: Lost the connection to the server (libnfs: …)`.
    public var description: String {
        var text = "cannot \(operation) \(path): \(reason)"
        if let detail, !detail.isEmpty { text += " (libnfs: \(detail))" }
        return text
    }
}

/// The local file system as one side of a copy. Every call runs on
/// ``LocalThreads``, so a slow disk holds those threads, not the tasks' pool.
public struct LocalFileSystem: CopyFileSystem {
    private let calls = LocalCalls()
    public init() {}

    public func display(_ path: FilePath) -> String { path.escapedDescription }
    public var chunkSize: Int { 1 << 20 }

    private func local<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await LocalThreads.shared.run(body)
    }

    public func info(_ path: FilePath, followSymlinks: Bool) async throws -> FileInfo? {
        try await local { try calls.info(path, followSymlinks: followSymlinks) }
    }
    public func list(_ path: FilePath) async throws -> [FilePath.Component] { try await local { try calls.list(path) } }
    /// One hop to the local threads for the whole directory: the names and an lstat of each.
    public func entries(_ path: FilePath) async throws -> [(name: FilePath.Component, info: FileInfo?)] {
        try await local { try calls.list(path).map { ($0, try calls.info(path.appending($0), followSymlinks: false)) } }
    }
    public func makeDirectory(_ path: FilePath, permissions: Int) async throws {
        try await local { try calls.makeDirectory(path, permissions: permissions) }
    }
    public func makeSymlink(_ target: FilePath, at path: FilePath) async throws {
        try await local { try calls.makeSymlink(target, at: path) }
    }
    public func readSymlink(_ path: FilePath) async throws -> FilePath { try await local { try calls.readSymlink(path) } }
    public func rename(_ from: FilePath, to: FilePath) async throws { try await local { try calls.rename(from, to: to) } }
    public func remove(_ path: FilePath) async throws { try await local { try calls.remove(path) } }
    public func removeDirectory(_ path: FilePath) async throws { try await local { try calls.removeDirectory(path) } }
    /// Mode, owner, then times (a chown may clear set-id bits; the times come last so nothing moves them).
    public func setAttributes(_ path: FilePath, _ attributes: FileAttributes, writtenBy writer: (any FileWriter)?) async throws {
        try await local {
            if let permissions = attributes.permissions { try calls.setPermissions(path, permissions) }
            if let owner = attributes.owner { try calls.setOwner(path, uid: owner.uid, gid: owner.gid) }
            if let times = attributes.times { try calls.setTimes(path, access: times.access, modification: times.modification) }
        }
    }
    public func openRead(_ path: FilePath) async throws -> any FileReader { try await local { try calls.openRead(path) } }
    public func createExclusive(_ path: FilePath, permissions: Int) async throws -> any FileWriter {
        try await local { try calls.create(path, [.create, .exclusiveCreate], permissions) }
    }
    public func createTruncating(_ path: FilePath, permissions: Int) async throws -> any FileWriter {
        try await local { try calls.create(path, [.create, .truncate], permissions) }
    }
}

/// The blocking system calls behind ``LocalFileSystem``, run on ``LocalThreads``.
struct LocalCalls: Sendable {

    private func check(_ rc: Int32, _ operation: String, _ path: FilePath) throws {
        if rc != 0 { throw FileOperationError(code: Errno(rawValue: errno), operation: operation, path: path) }
    }

    func info(_ path: FilePath, followSymlinks: Bool) throws -> FileInfo? {
        var st = stat()
        let rc = Platform.status(path, &st, followSymlinks: followSymlinks)
        if rc != 0 {
            if errno == ENOENT { return nil }
            throw FileOperationError(code: Errno(rawValue: errno), operation: "stat", path: path)
        }
        let kind: FileInfo.Kind = switch st.st_mode & S_IFMT {
        case S_IFREG: .file
        case S_IFDIR: .directory
        case S_IFLNK: .symlink
        default: .other
        }
        return FileInfo(kind: kind, size: UInt64(st.st_size), permissions: Int(st.st_mode & 0o7777),
                        uid: Int(st.st_uid), gid: Int(st.st_gid),
                        accessTime: Platform.accessTime(st), modificationTime: Platform.modificationTime(st))
    }

    func list(_ path: FilePath) throws -> [FilePath.Component] {
        guard let dir = Platform.openDirectory(path) else {
            throw FileOperationError(code: Errno(rawValue: errno), operation: "opendir", path: path)
        }
        defer { closedir(dir) }
        var names: [FilePath.Component] = []
        errno = 0
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { FilePath.Component(platformString: $0) }
            }
            if let name, name.kind == .regular { names.append(name) }
        }
        // readdir returns NULL at the end and on an error; only errno tells them apart.
        if errno != 0 { throw FileOperationError(code: Errno(rawValue: errno), operation: "readdir", path: path) }
        return names
    }

    func makeDirectory(_ path: FilePath, permissions: Int) throws {
        try check(Platform.makeDirectory(path, mode_t(permissions)), "mkdir", path)
    }
    func makeSymlink(_ target: FilePath, at path: FilePath) throws { try check(Platform.makeSymlink(target, path), "symlink", path) }
    func readSymlink(_ path: FilePath) throws -> FilePath {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = Platform.readSymlink(path, &buffer, 4096)
        if n < 0 { throw FileOperationError(code: Errno(rawValue: errno), operation: "readlink", path: path) }
        return FilePath(platformString: Array(buffer[..<n]) + [0])
    }
    func rename(_ from: FilePath, to: FilePath) throws { try check(Platform.renameItem(from, to), "rename", from) }
    func remove(_ path: FilePath) throws { try check(Platform.removeFile(path), "unlink", path) }
    func removeDirectory(_ path: FilePath) throws { try check(Platform.removeDirectory(path), "rmdir", path) }
    func setPermissions(_ path: FilePath, _ permissions: Int) throws {
        try check(Platform.changeMode(path, mode_t(permissions)), "chmod", path)
    }
    func setOwner(_ path: FilePath, uid: Int, gid: Int) throws {
        try check(Platform.changeOwner(path, uid_t(uid), gid_t(gid)), "chown", path)
    }
    func setTimes(_ path: FilePath, access: NFSTimestamp, modification: NFSTimestamp) throws {
        let times = [timespec(tv_sec: Int(access.seconds), tv_nsec: Int(access.nanoseconds)),
                     timespec(tv_sec: Int(modification.seconds), tv_nsec: Int(modification.nanoseconds))]
        try check(Platform.setTimes(path, times), "utimes", path)
    }

    /// Opens `path` and reads its first ``LocalReader/prefetchSize`` bytes in the same
    /// call, and closes it there too when that was the whole file.
    func openRead(_ path: FilePath) throws -> LocalReader {
        let file: LocalFile
        do { file = LocalFile(fd: try FileDescriptor.open(path, .readOnly), path: path) }
        catch let e as Errno { throw FileOperationError(code: e, operation: "open", path: path) }
        var first = [UInt8](repeating: 0, count: LocalReader.prefetchSize)
        let count: Int
        do { count = try first.withUnsafeMutableBytes { try file.readAll(into: $0) } } catch {
            try? file.closeNow()
            throw error
        }
        first.removeLast(first.count - count)
        let whole = count < LocalReader.prefetchSize
        if whole { try file.closeNow() }
        return LocalReader(file: file, first: first, closed: whole)
    }
    func create(_ path: FilePath, _ options: FileDescriptor.OpenOptions, _ permissions: Int) throws -> LocalFile {
        do {
            return LocalFile(fd: try FileDescriptor.open(path, .writeOnly, options: options,
                                                         permissions: FilePermissions(rawValue: mode_t(permissions))), path: path)
        } catch let e as Errno { throw FileOperationError(code: e, operation: "open", path: path) }
    }
}

/// A local file opened for reading, its first bytes read with the open: a small file's
/// open, read and close are one hop to ``LocalThreads``, not three (a tree of small
/// files spends its time in hops between threads).
final class LocalReader: FileReader {
    static let prefetchSize = 64 << 10
    private let file: LocalFile
    /// The bytes read with the open not yet taken, and whether the descriptor is closed
    /// (by the open, when they were the whole file; or by ``close()``).
    private let state: Mutex<(first: [UInt8], taken: Int, closed: Bool)>

    init(file: LocalFile, first: [UInt8], closed: Bool) {
        self.file = file
        state = Mutex((first, 0, closed))
    }

    /// Fills `buffer` as ``LocalFile`` does: the bytes read with the open first, then the file's.
    func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        let (copied, atEnd) = state.withLock { s -> (Int, Bool) in
            let n = min(buffer.count, s.first.count - s.taken)
            if n > 0 {
                s.first.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + s.taken, byteCount: n) }
                s.taken += n
            }
            return (n, s.closed && s.taken == s.first.count)
        }
        if copied == buffer.count || atEnd { return copied }
        return try await copied + file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[copied...]))
    }

    func close() async throws {
        let open = state.withLock { s in
            defer { s.closed = true }
            return !s.closed
        }
        if open { try await file.close() }
    }
}

/// A local file descriptor as reader or writer.
/// Each call is one hop to ``LocalThreads``.
struct LocalFile: FileReader, FileWriter {
    let fd: FileDescriptor
    let path: FilePath

    func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        // The buffer outlives the call: the task waits for it.
        let buffer = UncheckedSendable(buffer)
        return try await LocalThreads.shared.run { try readAll(into: buffer.value) }
    }
    func write(_ buffer: UnsafeRawBufferPointer) async throws {
        let buffer = UncheckedSendable(buffer)
        try await LocalThreads.shared.run { try writeAll(buffer.value) }
    }
    func skip(_ count: Int) async throws {
        // lseek never waits on the disk.
        do { _ = try fd.seek(offset: Int64(count), from: .current) }
        catch let e as Errno { throw FileOperationError(code: e, operation: "seek", path: path) }
    }
    func setSize(_ size: UInt64) async throws { try await LocalThreads.shared.run { try truncate(size) } }
    func setPermissions(_ permissions: Int) async throws { try await LocalThreads.shared.run { try chmod(permissions) } }
    func close() async throws { try await LocalThreads.shared.run { try closeNow() } }

    func readAll(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var done = 0
        do {
            while done < buffer.count {
                let n = try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
                if n == 0 { break }
                done += n
            }
        } catch let e as Errno { throw FileOperationError(code: e, operation: "read", path: path) }
        return done
    }
    private func writeAll(_ buffer: UnsafeRawBufferPointer) throws {
        do {
            // In pieces of at most 1 MiB: on the 6.x kernels measured here, write(2)s of 4 MiB
            // into new page cache sometimes spent 0.5-1 s of system time per 256 MiB in
            // copy_folio_from_iter_atomic (4 of 16 dd runs at bs=4M; none of 16 at 1M or 256K).
            var start = 0
            while start < buffer.count {
                let end = min(start + Self.writePiece, buffer.count)
                _ = try fd.writeAll(UnsafeRawBufferPointer(rebasing: buffer[start..<end]))
                start = end
            }
        } catch let e as Errno { throw FileOperationError(code: e, operation: "write", path: path) }
    }
    static let writePiece = 1 << 20
    private func truncate(_ size: UInt64) throws {
        if ftruncate(fd.rawValue, off_t(size)) != 0 {
            throw FileOperationError(code: Errno(rawValue: errno), operation: "truncate", path: path)
        }
    }
    private func chmod(_ permissions: Int) throws {
        if fchmod(fd.rawValue, mode_t(permissions)) != 0 {
            throw FileOperationError(code: Errno(rawValue: errno), operation: "chmod", path: path)
        }
    }
    /// Local files are not fsynced, as cp and rsync do not: the rename that follows
    /// is ordered after the data by the kernel (ext4's auto_da_alloc, and its like),
    /// and an fsync of every file would make local copies several times slower.
    /// NFS destinations are committed (see ``NFSWriter``): the server may hold unstable writes.
    var connectionIdentity: UInt64? { nil }
    func closeNow() throws {
        do { try fd.close() } catch let e as Errno { throw FileOperationError(code: e, operation: "close", path: path) }
    }
}

/// A value the compiler cannot prove safe to send, sent where the sender waits
/// for the receiver to finish with it (a buffer lent to a system call).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

internal import CLibNFS
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What ``NFSContext/access(_:_:)`` asks about.
public struct NFSAccessMode: OptionSet, Sendable, Hashable {
    /// The bits of the set.
    public let rawValue: Int32
    /// Creates a set from its bits.
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// Whether the file exists (`F_OK`).
    public static let exists: NFSAccessMode = []
    /// Read permission (`R_OK`).
    public static let read = NFSAccessMode(rawValue: R_OK)
    /// Write permission (`W_OK`).
    public static let write = NFSAccessMode(rawValue: W_OK)
    /// Execute or search permission (`X_OK`).
    public static let execute = NFSAccessMode(rawValue: X_OK)
}

extension NFSContext {
    /// The attributes of `path`, following a final symbolic link. Maps `nfs_stat64`.
    /// - Throws: ``NFSError`` (`ENOENT`, `ENOTDIR`, `EACCES`, …).
    public func stat(_ path: some NFSPathRepresentable) throws -> NFSStat {
        try run(Operations.stat(path.nfsFilePath, following: true))
    }

    /// ``stat(_:)``, suspending the task instead of blocking the thread.
    public func stat(_ path: some NFSPathRepresentable) async throws -> NFSStat {
        try await run(Operations.stat(path.nfsFilePath, following: true))
    }

    /// The attributes of `path` itself, not following a final symbolic link. Maps `nfs_lstat64`.
    /// - Throws: ``NFSError``.
    public func lstat(_ path: some NFSPathRepresentable) throws -> NFSStat {
        try run(Operations.stat(path.nfsFilePath, following: false))
    }

    /// ``lstat(_:)``, suspending the task instead of blocking the thread.
    public func lstat(_ path: some NFSPathRepresentable) async throws -> NFSStat {
        try await run(Operations.stat(path.nfsFilePath, following: false))
    }

    /// Figures for the file system holding `path` (size, free space, inodes). Maps `nfs_statvfs64`.
    /// - Throws: ``NFSError``.
    public func statvfs(_ path: some NFSPathRepresentable = "/") throws -> NFSFileSystemStats {
        try run(Operations.statvfs(path.nfsFilePath))
    }

    /// ``statvfs(_:)``, suspending the task instead of blocking the thread.
    public func statvfs(_ path: some NFSPathRepresentable = "/") async throws -> NFSFileSystemStats {
        try await run(Operations.statvfs(path.nfsFilePath))
    }

    /// Whether the caller's credentials allow `mode` on `path`. Maps `nfs_access`.
    ///
    /// Returns false when the server denies access (`EACCES`); with ``NFSAccessMode/exists``,
    /// false when the file does not exist.
    /// - Throws: ``NFSError`` for any other failure.
    public func access(_ path: some NFSPathRepresentable, _ mode: NFSAccessMode = .exists) throws -> Bool {
        let path = path.nfsFilePath
        do {
            if mode.isEmpty { _ = try stat(path) } else { try run(Self.accessRequest(path, mode)) }
            return true
        } catch let error as NFSError where Self.accessDenied(error, mode) {
            return false
        }
    }

    /// ``access(_:_:)``, suspending the task instead of blocking the thread.
    public func access(_ path: some NFSPathRepresentable, _ mode: NFSAccessMode = .exists) async throws -> Bool {
        let path = path.nfsFilePath
        do {
            if mode.isEmpty { _ = try await stat(path) } else { try await run(Self.accessRequest(path, mode)) }
            return true
        } catch let error as NFSError where Self.accessDenied(error, mode) {
            return false
        }
    }

    private static func accessRequest(_ path: FilePath, _ mode: NFSAccessMode) -> Request<Void> {
        Operations.status("access", path) { Syscalls.accessAsync($0, path, mode.rawValue, $1) }
    }

    private static func accessDenied(_ error: NFSError, _ mode: NFSAccessMode) -> Bool {
        error.code == .permissionDenied || (mode.isEmpty && error.code == .noSuchFileOrDirectory)
    }

    /// Whether anything exists at `path` (a broken final symlink counts as missing).
    /// - Throws: ``NFSError`` for failures other than `ENOENT` and `ENOTDIR`.
    public func exists(_ path: some NFSPathRepresentable) throws -> Bool {
        try statIfPresent(path) != nil
    }

    /// ``exists(_:)``, suspending the task instead of blocking the thread.
    public func exists(_ path: some NFSPathRepresentable) async throws -> Bool {
        try await statIfPresent(path) != nil
    }

    /// Whether `path` is a regular file (following symlinks); false when missing.
    /// - Throws: ``NFSError`` for failures other than `ENOENT` and `ENOTDIR`.
    public func isFile(_ path: some NFSPathRepresentable) throws -> Bool {
        try statIfPresent(path)?.isFile ?? false
    }

    /// ``isFile(_:)``, suspending the task instead of blocking the thread.
    public func isFile(_ path: some NFSPathRepresentable) async throws -> Bool {
        try await statIfPresent(path)?.isFile ?? false
    }

    /// Whether `path` is a directory (following symlinks); false when missing.
    /// - Throws: ``NFSError`` for failures other than `ENOENT` and `ENOTDIR`.
    public func isDirectory(_ path: some NFSPathRepresentable) throws -> Bool {
        try statIfPresent(path)?.isDirectory ?? false
    }

    /// ``isDirectory(_:)``, suspending the task instead of blocking the thread.
    public func isDirectory(_ path: some NFSPathRepresentable) async throws -> Bool {
        try await statIfPresent(path)?.isDirectory ?? false
    }

    /// ``stat(_:)``, or nil when `path` does not exist.
    /// - Throws: ``NFSError`` for failures other than `ENOENT` and `ENOTDIR`.
    public func statIfPresent(_ path: some NFSPathRepresentable) throws -> NFSStat? {
        do { return try stat(path) } catch let error as NFSError where error.isMissingPath {
            return nil
        }
    }

    /// ``statIfPresent(_:)``, suspending the task instead of blocking the thread.
    public func statIfPresent(_ path: some NFSPathRepresentable) async throws -> NFSStat? {
        do { return try await stat(path) } catch let error as NFSError where error.isMissingPath {
            return nil
        }
    }

    /// Sets the permission bits of `path`. Maps `nfs_chmod`.
    /// - Throws: ``NFSError``.
    public func chmod(_ path: some NFSPathRepresentable, _ permissions: FilePermissions) throws {
        try run(Self.chmodRequest(path.nfsFilePath, Int(permissions.rawValue)))
    }

    /// ``chmod(_:_:)``, suspending the task instead of blocking the thread.
    public func chmod(_ path: some NFSPathRepresentable, _ permissions: FilePermissions) async throws {
        try await run(Self.chmodRequest(path.nfsFilePath, Int(permissions.rawValue)))
    }

    /// Sets the permission bits of `path` from a numeric mode such as `0o644`. Maps `nfs_chmod`.
    /// - Throws: ``NFSError``.
    public func chmod(_ path: some NFSPathRepresentable, mode: Int) throws {
        try run(Self.chmodRequest(path.nfsFilePath, mode))
    }

    /// ``chmod(_:mode:)``, suspending the task instead of blocking the thread.
    public func chmod(_ path: some NFSPathRepresentable, mode: Int) async throws {
        try await run(Self.chmodRequest(path.nfsFilePath, mode))
    }

    private static func chmodRequest(_ path: FilePath, _ mode: Int) -> Request<Void> {
        Operations.status("chmod", path) { Syscalls.chmodAsync($0, path, Int32(truncatingIfNeeded: mode & 0o7777), $1) }
    }

    /// Sets the owner and group of `path` (following symlinks). Maps `nfs_chown`
    /// (over NFSv4, `nfs_fchown` on a handle opened for it; see ``VersionQuirks``).
    /// - Throws: ``NFSError`` (`EPERM` unless the server treats the caller as root;
    ///   over NFSv4, `ENOTSUP` for anything but a regular file, unless it already has that owner).
    public func chown(_ path: some NFSPathRepresentable, uid: Int, gid: Int) throws {
        try chown(path.nfsFilePath, uid: uid, gid: gid, following: true)
    }

    /// ``chown(_:uid:gid:)``, suspending the task instead of blocking the thread.
    public func chown(_ path: some NFSPathRepresentable, uid: Int, gid: Int) async throws {
        try await chown(path.nfsFilePath, uid: uid, gid: gid, following: true)
    }

    /// Sets the owner and group of a symbolic link itself. Maps `nfs_lchown`.
    /// - Throws: ``NFSError`` (over NFSv4, `ENOTSUP` for a symbolic link, unless it already has that owner).
    public func lchown(_ path: some NFSPathRepresentable, uid: Int, gid: Int) throws {
        try chown(path.nfsFilePath, uid: uid, gid: gid, following: false)
    }

    /// ``lchown(_:uid:gid:)``, suspending the task instead of blocking the thread.
    public func lchown(_ path: some NFSPathRepresentable, uid: Int, gid: Int) async throws {
        try await chown(path.nfsFilePath, uid: uid, gid: gid, following: false)
    }

    private func chown(_ path: FilePath, uid: Int, gid: Int, following: Bool) throws {
        let (uid, gid) = (Int32(truncatingIfNeeded: uid), Int32(truncatingIfNeeded: gid))
        if VersionQuirks.pathChownChangesParent(version: version) {
            let st = following ? try stat(path) : try lstat(path)
            if Self.alreadyOwned(st, uid, gid) { return }
            try Self.checkChownThroughHandle(st, following, path)
            let file = try open(path, flags: [.read])
            defer { try? file.close() }
            return try file.chown(uid: uid, gid: gid, operation: following ? "chown" : "lchown")
        }
        try run(Self.chownRequest(path, uid, gid, following))
    }

    private func chown(_ path: FilePath, uid: Int, gid: Int, following: Bool) async throws {
        let (uid, gid) = (Int32(truncatingIfNeeded: uid), Int32(truncatingIfNeeded: gid))
        if VersionQuirks.pathChownChangesParent(version: version) {
            let st = following ? try await stat(path) : try await lstat(path)
            if Self.alreadyOwned(st, uid, gid) { return }
            try Self.checkChownThroughHandle(st, following, path)
            let file = try await open(path, flags: [.read])
            do { try await file.chown(uid: uid, gid: gid, operation: following ? "chown" : "lchown") } catch {
                try? await file.close()
                throw error
            }
            return try await file.close()
        }
        try await run(Self.chownRequest(path, uid, gid, following))
    }

    private static func chownRequest(_ path: FilePath, _ uid: Int32, _ gid: Int32, _ following: Bool) -> Request<Void> {
        Operations.status(following ? "chown" : "lchown", path) {
            following ? Syscalls.chownAsync($0, path, uid, gid, $1) : Syscalls.lchownAsync($0, path, uid, gid, $1)
        }
    }

    /// The owner asked for is the one it has (as `-1` keeps it): nothing to change, on any kind of file.
    private static func alreadyOwned(_ st: NFSStat, _ uid: Int32, _ gid: Int32) -> Bool {
        (uid == -1 || st.uid == UInt32(bitPattern: uid)) && (gid == -1 || st.gid == UInt32(bitPattern: gid))
    }

    /// Over NFSv4 only a regular file can be given an owner (through an open
    /// handle, the one v4 chown that libnfs applies to the right object);
    /// anything else is refused, never applied to the wrong object.
    private static func checkChownThroughHandle(_ st: NFSStat, _ following: Bool, _ path: FilePath) throws {
        guard st.isFile else {
            throw NFSError(code: .notSupported, operation: following ? "chown" : "lchown", path: path,
                           detail: "over NFSv4, libnfs changes the owner of the parent directory instead; "
                               + "only regular files can be given an owner here (use NFSv3)")
        }
    }

    /// Sets `path`'s length, cutting it or extending it with zeros. Maps `nfs_truncate`.
    /// - Throws: ``NFSError``.
    public func truncate(_ path: some NFSPathRepresentable, to length: UInt64) throws {
        try run(Self.truncateRequest(path.nfsFilePath, length))
    }

    /// ``truncate(_:to:)``, suspending the task instead of blocking the thread.
    public func truncate(_ path: some NFSPathRepresentable, to length: UInt64) async throws {
        try await run(Self.truncateRequest(path.nfsFilePath, length))
    }

    private static func truncateRequest(_ path: FilePath, _ length: UInt64) -> Request<Void> {
        Operations.status("truncate", path) { Syscalls.truncateAsync($0, path, length, $1) }
    }

    /// Sets the access and modification times of `path` (microsecond precision on the wire). Maps `nfs_utimes`.
    /// - Throws: ``NFSError``.
    public func utimes(_ path: some NFSPathRepresentable, accessTime: NFSTimestamp, modificationTime: NFSTimestamp) throws {
        try run(Self.utimesRequest(path.nfsFilePath, accessTime, modificationTime))
    }

    /// ``utimes(_:accessTime:modificationTime:)``, suspending the task instead of blocking the thread.
    public func utimes(_ path: some NFSPathRepresentable, accessTime: NFSTimestamp,
                       modificationTime: NFSTimestamp) async throws {
        try await run(Self.utimesRequest(path.nfsFilePath, accessTime, modificationTime))
    }

    private static func utimesRequest(_ path: FilePath, _ atime: NFSTimestamp, _ mtime: NFSTimestamp) -> Request<Void> {
        Operations.status("utimes", path) {
            Syscalls.utimesAsync($0, path, atime: (atime.seconds, Int64(atime.nanoseconds / 1000)),
                                 mtime: (mtime.seconds, Int64(mtime.nanoseconds / 1000)), $1)
        }
    }
}

extension NFSError {
    /// `ENOENT` or `ENOTDIR`: nothing at the path.
    var isMissingPath: Bool { code == .noSuchFileOrDirectory || code == .notDirectory }
}

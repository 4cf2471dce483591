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
        let path = path.nfsFilePath
        var st = nfs_stat_64()
        try call("stat", path: path) { Syscalls.stat($0, path, &st) }
        return NFSStat(st)
    }

    /// The attributes of `path` itself, not following a final symbolic link. Maps `nfs_lstat64`.
    /// - Throws: ``NFSError``.
    public func lstat(_ path: some NFSPathRepresentable) throws -> NFSStat {
        let path = path.nfsFilePath
        var st = nfs_stat_64()
        try call("lstat", path: path) { Syscalls.lstat($0, path, &st) }
        return NFSStat(st)
    }

    /// Figures for the file system holding `path` (size, free space, inodes). Maps `nfs_statvfs64`.
    /// - Throws: ``NFSError``.
    public func statvfs(_ path: some NFSPathRepresentable = "/") throws -> NFSFileSystemStats {
        let path = path.nfsFilePath
        var st = nfs_statvfs_64()
        try call("statvfs", path: path) { Syscalls.statvfs($0, path, &st) }
        return NFSFileSystemStats(st)
    }

    /// Whether the caller's credentials allow `mode` on `path`. Maps `nfs_access`.
    ///
    /// Returns false when the server denies access (`EACCES`); with ``NFSAccessMode/exists``,
    /// false when the file does not exist.
    /// - Throws: ``NFSError`` for any other failure.
    public func access(_ path: some NFSPathRepresentable, _ mode: NFSAccessMode = .exists) throws -> Bool {
        let path = path.nfsFilePath
        do {
            if mode.isEmpty { _ = try stat(path); return true }
            try call("access", path: path) { Syscalls.access($0, path, mode.rawValue) }
            return true
        } catch let error as NFSError where error.code == .permissionDenied
                    || (mode.isEmpty && error.code == .noSuchFileOrDirectory) {
            return false
        }
    }

    /// Whether anything exists at `path` (a broken final symlink counts as missing).
    /// - Throws: ``NFSError`` for failures other than `ENOENT` and `ENOTDIR`.
    public func exists(_ path: some NFSPathRepresentable) throws -> Bool {
        try statIfPresent(path) != nil
    }

    /// Whether `path` is a regular file (following symlinks); false when missing.
    /// - Throws: ``NFSError`` for failures other than `ENOENT` and `ENOTDIR`.
    public func isFile(_ path: some NFSPathRepresentable) throws -> Bool {
        try statIfPresent(path)?.isFile ?? false
    }

    /// Whether `path` is a directory (following symlinks); false when missing.
    /// - Throws: ``NFSError`` for failures other than `ENOENT` and `ENOTDIR`.
    public func isDirectory(_ path: some NFSPathRepresentable) throws -> Bool {
        try statIfPresent(path)?.isDirectory ?? false
    }

    /// ``stat(_:)``, or nil when `path` does not exist.
    /// - Throws: ``NFSError`` for failures other than `ENOENT` and `ENOTDIR`.
    public func statIfPresent(_ path: some NFSPathRepresentable) throws -> NFSStat? {
        do { return try stat(path) } catch let error as NFSError
            where error.code == .noSuchFileOrDirectory || error.code == .notDirectory {
            return nil
        }
    }

    /// Sets the permission bits of `path`. Maps `nfs_chmod`.
    /// - Throws: ``NFSError``.
    public func chmod(_ path: some NFSPathRepresentable, _ permissions: FilePermissions) throws {
        let path = path.nfsFilePath
        try call("chmod", path: path) { Syscalls.chmod($0, path, Int32(permissions.rawValue)) }
    }

    /// Sets the permission bits of `path` from a numeric mode such as `0o644`. Maps `nfs_chmod`.
    /// - Throws: ``NFSError``.
    public func chmod(_ path: some NFSPathRepresentable, mode: Int) throws {
        let path = path.nfsFilePath
        try call("chmod", path: path) { Syscalls.chmod($0, path, Int32(truncatingIfNeeded: mode & 0o7777)) }
    }

    /// Sets the owner and group of `path` (following symlinks). Maps `nfs_chown`
    /// (over NFSv4, `nfs_fchown` on a handle opened for it; see ``VersionQuirks``).
    /// - Throws: ``NFSError`` (`EPERM` unless the server treats the caller as root;
    ///   over NFSv4, `ENOTSUP` for anything but a regular file).
    public func chown(_ path: some NFSPathRepresentable, uid: Int, gid: Int) throws {
        let path = path.nfsFilePath
        let (uid, gid) = (Int32(truncatingIfNeeded: uid), Int32(truncatingIfNeeded: gid))
        if VersionQuirks.pathChownChangesParent(version: version) {
            return try chownThroughHandle("chown", path, uid, gid)
        }
        try call("chown", path: path) { Syscalls.chown($0, path, uid, gid) }
    }

    /// Sets the owner and group of a symbolic link itself. Maps `nfs_lchown`.
    /// - Throws: ``NFSError`` (over NFSv4, `ENOTSUP` for a symbolic link).
    public func lchown(_ path: some NFSPathRepresentable, uid: Int, gid: Int) throws {
        let path = path.nfsFilePath
        let (uid, gid) = (Int32(truncatingIfNeeded: uid), Int32(truncatingIfNeeded: gid))
        if VersionQuirks.pathChownChangesParent(version: version) {
            return try chownThroughHandle("lchown", path, uid, gid, following: false)
        }
        try call("lchown", path: path) { Syscalls.lchown($0, path, uid, gid) }
    }

    /// chown of a regular file through an open handle, the one NFSv4 chown that
    /// libnfs applies to the right object; anything else is refused, never
    /// applied to the wrong object.
    private func chownThroughHandle(_ operation: String, _ path: FilePath, _ uid: Int32, _ gid: Int32,
                                    following: Bool = true) throws {
        let st = following ? try stat(path) : try lstat(path)
        guard st.isFile else {
            throw NFSError(code: .notSupported, operation: operation, path: path,
                           detail: "over NFSv4, libnfs changes the owner of the parent directory instead; "
                               + "only regular files can be given an owner here (use NFSv3)")
        }
        let file = try open(path, flags: [.read])
        defer { try? file.close() }
        try file.chown(uid: uid, gid: gid, operation: operation)
    }

    /// Sets `path`'s length, cutting it or extending it with zeros. Maps `nfs_truncate`.
    /// - Throws: ``NFSError``.
    public func truncate(_ path: some NFSPathRepresentable, to length: UInt64) throws {
        let path = path.nfsFilePath
        try call("truncate", path: path) { Syscalls.truncate($0, path, length) }
    }

    /// Sets the access and modification times of `path` (microsecond precision on the wire). Maps `nfs_utimes`.
    /// - Throws: ``NFSError``.
    public func utimes(_ path: some NFSPathRepresentable, accessTime: NFSTimestamp, modificationTime: NFSTimestamp) throws {
        let path = path.nfsFilePath
        try call("utimes", path: path) {
            Syscalls.utimes($0, path,
                            atime: (accessTime.seconds, Int64(accessTime.nanoseconds / 1000)),
                            mtime: (modificationTime.seconds, Int64(modificationTime.nanoseconds / 1000)))
        }
    }
}

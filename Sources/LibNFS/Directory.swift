internal import CLibNFS
import SystemPackage

/// One directory visited by ``NFSContext/walk(_:topDown:)``, like Python's `os.walk` tuples.
public struct NFSWalkEntry: Sendable, Hashable {
    /// The directory's path relative to the export.
    public var path: FilePath
    /// Names of its subdirectories (symbolic links to directories are not followed and appear in ``files``).
    public var directories: [FilePath.Component]
    /// Names of everything else in it.
    public var files: [FilePath.Component]
}

extension NFSContext {
    /// The names in directory `path`, without `.` and `..`, in the server's order.
    /// Maps `nfs_opendir`/`nfs_readdir`/`nfs_closedir`; the directory handle is always closed.
    /// - Throws: ``NFSError`` (`ENOENT`, `ENOTDIR`, `EACCES`, …).
    ///
    /// Names are the server's bytes (see ``NFSPathRepresentable``): each can be
    /// appended to `path` and passed back to any method, whatever its encoding.
    public func listdir(_ path: some NFSPathRepresentable) throws -> [FilePath.Component] {
        try scandir(path).map(\.name)
    }

    /// The entries of directory `path` with their attributes (which READDIRPLUS returns with the names).
    /// - Throws: ``NFSError``.
    public func scandir(_ path: some NFSPathRepresentable) throws -> [NFSDirectoryEntry] {
        let path = path.nfsFilePath
        return try callResult("opendir", path: path) { Syscalls.readDirectory($0, path) }
    }

    /// Every directory under `top` (itself included), parents before children
    /// when `topDown` is true, children first otherwise. Symbolic links are not followed.
    /// - Throws: ``NFSError`` for the first directory that cannot be listed.
    public func walk(_ top: some NFSPathRepresentable, topDown: Bool = true) throws -> [NFSWalkEntry] {
        var result: [NFSWalkEntry] = []
        try walk(top.nfsFilePath, topDown: topDown, into: &result)
        return result
    }

    private func walk(_ directory: FilePath, topDown: Bool, into result: inout [NFSWalkEntry]) throws {
        let entries = try scandir(directory)
        let directories = entries.filter { $0.stat.isDirectory }.map(\.name)
        let files = entries.filter { !$0.stat.isDirectory }.map(\.name)
        let entry = NFSWalkEntry(path: directory, directories: directories, files: files)
        if topDown { result.append(entry) }
        for name in directories {
            try walk(directory.appending(name), topDown: topDown, into: &result)
        }
        if !topDown { result.append(entry) }
    }

    /// Creates directory `path` with `mode` (default `0o755`). Maps `nfs_mkdir2`.
    /// - Throws: ``NFSError`` (`EEXIST`, `ENOENT` for a missing parent, …).
    public func mkdir(_ path: some NFSPathRepresentable, mode: Int = 0o755) throws {
        let path = path.nfsFilePath
        try call("mkdir", path: path) { Syscalls.mkdir($0, path, mode: Int32(truncatingIfNeeded: mode)) }
    }

    /// Creates `path` and any missing parents; succeeds when it already is a directory.
    /// - Throws: ``NFSError`` (`ENOTDIR`/`EEXIST` when a component exists but is not a directory).
    public func makedirs(_ path: some NFSPathRepresentable, mode: Int = 0o755) throws {
        let path = path.nfsFilePath
        var current = path.root.map { FilePath(root: $0) } ?? FilePath(".")
        for component in path.components {
            current.append(component)
            if try isDirectory(current) { continue }
            do {
                try mkdir(current, mode: mode)
            } catch let error as NFSError where error.code == .fileExists {
                // Lost a race with another creator: fine if what exists now is a directory.
                guard try isDirectory(current) else { throw error }
            }
        }
    }

    /// Removes the empty directory `path`. Maps `nfs_rmdir`.
    /// - Throws: ``NFSError`` (`ENOTEMPTY`, `ENOTDIR`, `ENOENT`, …).
    public func rmdir(_ path: some NFSPathRepresentable) throws {
        let path = path.nfsFilePath
        try call("rmdir", path: path) { Syscalls.rmdir($0, path) }
    }

    /// Removes the file or symbolic link `path`. Maps `nfs_unlink`.
    /// - Throws: ``NFSError``.
    public func unlink(_ path: some NFSPathRepresentable) throws {
        let path = path.nfsFilePath
        try call("unlink", path: path) { Syscalls.unlink($0, path) }
    }

    /// Removes `path` and, if it is a directory, everything below it (symbolic links are removed, not followed).
    /// - Throws: ``NFSError`` for the first entry that cannot be removed.
    public func removeTree(_ path: some NFSPathRepresentable) throws {
        let path = path.nfsFilePath
        let st = try lstat(path)
        guard st.isDirectory else { return try unlink(path) }
        for entry in try scandir(path) {
            try removeTree(path.appending(entry.name))
        }
        try rmdir(path)
    }

    /// Renames `source` to `destination`, replacing a file there. Maps `nfs_rename`.
    /// - Throws: ``NFSError``.
    public func rename(_ source: some NFSPathRepresentable, to destination: some NFSPathRepresentable) throws {
        let (source, destination) = (source.nfsFilePath, destination.nfsFilePath)
        try call("rename", path: source) { Syscalls.rename($0, source, destination) }
    }

    /// Creates a hard link `link` to `existing`. Maps `nfs_link`.
    /// - Throws: ``NFSError``.
    public func link(_ existing: some NFSPathRepresentable, to link: some NFSPathRepresentable) throws {
        let (existing, link) = (existing.nfsFilePath, link.nfsFilePath)
        try call("link", path: link) { Syscalls.link($0, existing, link) }
    }

    /// Creates a symbolic link at `path` pointing to `target`. Maps `nfs_symlink`.
    /// - Throws: ``NFSError``.
    public func symlink(_ target: some NFSPathRepresentable, at path: some NFSPathRepresentable) throws {
        let (target, path) = (target.nfsFilePath, path.nfsFilePath)
        try call("symlink", path: path) { Syscalls.symlink($0, target: target, at: path) }
    }

    /// The target of the symbolic link `path`. Maps `nfs_readlink`.
    /// - Throws: ``NFSError`` (`EINVAL` when `path` is not a symbolic link).
    public func readlink(_ path: some NFSPathRepresentable) throws -> FilePath {
        let path = path.nfsFilePath
        let size = 4097
        return try withUnsafeTemporaryAllocation(of: CChar.self, capacity: size) { buffer in
            buffer.initialize(repeating: 0)
            try call("readlink", path: path) { Syscalls.readlink($0, path, buffer.baseAddress!, Int32(size - 1)) }
            return FilePath(platformString: buffer.baseAddress!)
        }
    }
}

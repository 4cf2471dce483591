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

    /// ``listdir(_:)``, suspending the task instead of blocking the thread.
    public func listdir(_ path: some NFSPathRepresentable) async throws -> [FilePath.Component] {
        try await scandir(path).map(\.name)
    }

    /// The entries of directory `path` with their attributes (which READDIRPLUS returns with the names).
    /// - Throws: ``NFSError``.
    public func scandir(_ path: some NFSPathRepresentable) throws -> [NFSDirectoryEntry] {
        try run(Operations.scandir(path.nfsFilePath))
    }

    /// ``scandir(_:)``, suspending the task instead of blocking the thread.
    public func scandir(_ path: some NFSPathRepresentable) async throws -> [NFSDirectoryEntry] {
        try await run(Operations.scandir(path.nfsFilePath))
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
        let entry = NFSWalkEntry(directory, try scandir(directory))
        if topDown { result.append(entry) }
        for name in entry.directories {
            try walk(directory.appending(name), topDown: topDown, into: &result)
        }
        if !topDown { result.append(entry) }
    }

    /// ``walk(_:topDown:)`` listing many directories at once: the subdirectories
    /// of every directory are listed concurrently, their requests sharing the
    /// connection (up to ``NFSOptions/maxRequestsInFlight``). The result is in
    /// the same order as the synchronous walk's.
    /// - Throws: ``NFSError`` for a directory that cannot be listed; `CancellationError`.
    public func walk(_ top: some NFSPathRepresentable, topDown: Bool = true) async throws -> [NFSWalkEntry] {
        var result: [NFSWalkEntry] = []
        try await walkTree(top.nfsFilePath).flatten(topDown: topDown, into: &result)
        return result
    }

    private func walkTree(_ directory: FilePath) async throws -> WalkNode {
        let entry = NFSWalkEntry(directory, try await scandir(directory))
        let children = try await withThrowingTaskGroup(of: (Int, WalkNode).self) { group in
            for (index, name) in entry.directories.enumerated() {
                group.addTask { (index, try await self.walkTree(directory.appending(name))) }
            }
            var children = [WalkNode?](repeating: nil, count: entry.directories.count)
            for try await (index, node) in group { children[index] = node }
            return children.map { $0! }
        }
        return WalkNode(entry: entry, children: children)
    }

    /// Creates directory `path` with `mode` (default `0o755`). Maps `nfs_mkdir2`.
    /// - Throws: ``NFSError`` (`EEXIST`, `ENOENT` for a missing parent, …).
    public func mkdir(_ path: some NFSPathRepresentable, mode: Int = 0o755) throws {
        try run(Self.mkdirRequest(path.nfsFilePath, mode))
    }

    /// ``mkdir(_:mode:)``, suspending the task instead of blocking the thread.
    public func mkdir(_ path: some NFSPathRepresentable, mode: Int = 0o755) async throws {
        try await run(Self.mkdirRequest(path.nfsFilePath, mode))
    }

    private static func mkdirRequest(_ path: FilePath, _ mode: Int) -> Request<Void> {
        Operations.status("mkdir", path) { Syscalls.mkdirAsync($0, path, mode: Int32(truncatingIfNeeded: mode), $1) }
    }

    /// Creates `path` and any missing parents; succeeds when it already is a directory.
    /// - Throws: ``NFSError`` (`ENOTDIR`/`EEXIST` when a component exists but is not a directory).
    public func makedirs(_ path: some NFSPathRepresentable, mode: Int = 0o755) throws {
        for current in Self.prefixes(of: path.nfsFilePath) {
            if try isDirectory(current) { continue }
            do {
                try mkdir(current, mode: mode)
            } catch let error as NFSError where error.code == .fileExists {
                // Lost a race with another creator: fine if what exists now is a directory.
                guard try isDirectory(current) else { throw error }
            }
        }
    }

    /// ``makedirs(_:mode:)``, suspending the task instead of blocking the thread.
    public func makedirs(_ path: some NFSPathRepresentable, mode: Int = 0o755) async throws {
        for current in Self.prefixes(of: path.nfsFilePath) {
            if try await isDirectory(current) { continue }
            do {
                try await mkdir(current, mode: mode)
            } catch let error as NFSError where error.code == .fileExists {
                guard try await isDirectory(current) else { throw error }
            }
        }
    }

    /// `/a`, `/a/b`, `/a/b/c` for `/a/b/c`.
    private static func prefixes(of path: FilePath) -> [FilePath] {
        var current = path.root.map { FilePath(root: $0) } ?? FilePath(".")
        return path.components.map { component in
            current.append(component)
            return current
        }
    }

    /// Removes the empty directory `path`. Maps `nfs_rmdir`.
    /// - Throws: ``NFSError`` (`ENOTEMPTY`, `ENOTDIR`, `ENOENT`, …).
    public func rmdir(_ path: some NFSPathRepresentable) throws {
        try run(Self.removeRequest("rmdir", path.nfsFilePath))
    }

    /// ``rmdir(_:)``, suspending the task instead of blocking the thread.
    public func rmdir(_ path: some NFSPathRepresentable) async throws {
        try await run(Self.removeRequest("rmdir", path.nfsFilePath))
    }

    /// Removes the file or symbolic link `path`. Maps `nfs_unlink`.
    /// - Throws: ``NFSError``.
    public func unlink(_ path: some NFSPathRepresentable) throws {
        try run(Self.removeRequest("unlink", path.nfsFilePath))
    }

    /// ``unlink(_:)``, suspending the task instead of blocking the thread.
    public func unlink(_ path: some NFSPathRepresentable) async throws {
        try await run(Self.removeRequest("unlink", path.nfsFilePath))
    }

    private static func removeRequest(_ operation: String, _ path: FilePath) -> Request<Void> {
        Operations.status(operation, path) {
            operation == "rmdir" ? Syscalls.rmdirAsync($0, path, $1) : Syscalls.unlinkAsync($0, path, $1)
        }
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

    /// ``removeTree(_:)``, removing the entries of each directory concurrently.
    public func removeTree(_ path: some NFSPathRepresentable) async throws {
        let path = path.nfsFilePath
        let st = try await lstat(path)
        guard st.isDirectory else { return try await unlink(path) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for entry in try await scandir(path) {
                group.addTask { try await self.removeTree(path.appending(entry.name)) }
            }
            try await group.waitForAll()
        }
        try await rmdir(path)
    }

    /// Renames `source` to `destination`, replacing a file there. Maps `nfs_rename`.
    /// - Throws: ``NFSError``.
    public func rename(_ source: some NFSPathRepresentable, to destination: some NFSPathRepresentable) throws {
        try run(Self.renameRequest(source.nfsFilePath, destination.nfsFilePath))
    }

    /// ``rename(_:to:)``, suspending the task instead of blocking the thread.
    public func rename(_ source: some NFSPathRepresentable, to destination: some NFSPathRepresentable) async throws {
        try await run(Self.renameRequest(source.nfsFilePath, destination.nfsFilePath))
    }

    private static func renameRequest(_ source: FilePath, _ destination: FilePath) -> Request<Void> {
        Operations.status("rename", source) { Syscalls.renameAsync($0, source, destination, $1) }
    }

    /// Creates a hard link `link` to `existing`. Maps `nfs_link`.
    /// - Throws: ``NFSError``.
    public func link(_ existing: some NFSPathRepresentable, to link: some NFSPathRepresentable) throws {
        try run(Self.linkRequest(existing.nfsFilePath, link.nfsFilePath))
    }

    /// ``link(_:to:)``, suspending the task instead of blocking the thread.
    public func link(_ existing: some NFSPathRepresentable, to link: some NFSPathRepresentable) async throws {
        try await run(Self.linkRequest(existing.nfsFilePath, link.nfsFilePath))
    }

    private static func linkRequest(_ existing: FilePath, _ link: FilePath) -> Request<Void> {
        Operations.status("link", link) { Syscalls.linkAsync($0, existing, link, $1) }
    }

    /// Creates a symbolic link at `path` pointing to `target`. Maps `nfs_symlink`.
    /// - Throws: ``NFSError``.
    public func symlink(_ target: some NFSPathRepresentable, at path: some NFSPathRepresentable) throws {
        try run(Self.symlinkRequest(target.nfsFilePath, path.nfsFilePath))
    }

    /// ``symlink(_:at:)``, suspending the task instead of blocking the thread.
    public func symlink(_ target: some NFSPathRepresentable, at path: some NFSPathRepresentable) async throws {
        try await run(Self.symlinkRequest(target.nfsFilePath, path.nfsFilePath))
    }

    private static func symlinkRequest(_ target: FilePath, _ path: FilePath) -> Request<Void> {
        Operations.status("symlink", path) { Syscalls.symlinkAsync($0, target: target, at: path, $1) }
    }

    /// The target of the symbolic link `path`. Maps `nfs_readlink`.
    /// - Throws: ``NFSError`` (`EINVAL` when `path` is not a symbolic link).
    public func readlink(_ path: some NFSPathRepresentable) throws -> FilePath {
        try run(Operations.readlink(path.nfsFilePath))
    }

    /// ``readlink(_:)``, suspending the task instead of blocking the thread.
    public func readlink(_ path: some NFSPathRepresentable) async throws -> FilePath {
        try await run(Operations.readlink(path.nfsFilePath))
    }
}

extension NFSWalkEntry {
    /// The walk entry of `directory` from its listing.
    init(_ directory: FilePath, _ entries: [NFSDirectoryEntry]) {
        self.init(path: directory,
                  directories: entries.filter { $0.stat.isDirectory }.map(\.name),
                  files: entries.filter { !$0.stat.isDirectory }.map(\.name))
    }
}

/// A directory and its subdirectories as the concurrent walk lists them.
struct WalkNode: Sendable {
    let entry: NFSWalkEntry
    let children: [WalkNode]

    func flatten(topDown: Bool, into result: inout [NFSWalkEntry]) {
        if topDown { result.append(entry) }
        for child in children { child.flatten(topDown: topDown, into: &result) }
        if !topDown { result.append(entry) }
    }
}

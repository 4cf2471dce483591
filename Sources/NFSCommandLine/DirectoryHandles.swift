@_spi(Handles) import LibNFS
import Synchronization
import SystemPackage

/// The handles of the directories a copy reads from or writes into on one
/// NFSv3 mount, each found once: a small file is then looked up, created or
/// renamed in its directory with one round trip, where a path call first looks
/// up every component from the root (libnfs 4.0 caches none).
///
/// A directory the copy removes or renames is forgotten, with what lies below
/// it. Another client renaming a directory meanwhile leaves a handle that
/// still names it (as a kernel client's cache would), or fails with `ESTALE`.
final class DirectoryHandles: Sendable {
    let context: NFSContext
    /// One lookup per directory, shared by every file that needs it meanwhile;
    /// a lookup that failed is dropped, so the next file asks again.
    private let known = Mutex<[FilePath: Task<NFSObjectHandle?, Never>]>([:])

    init?(context: NFSContext) {
        // A path into a nested export leaves the root's handle for that export's;
        // a walk by handle would not, so with them crossed, paths it is.
        guard context.supportsObjectHandles, !context.traversesNestedExports else { return nil }
        self.context = context
    }

    /// `directory`'s handle, or nil where it cannot be had (the caller then uses path calls, which report why).
    func handle(of directory: FilePath) async -> NFSObjectHandle? {
        let lookup = known.withLock { known in
            if let lookup = known[directory] { return lookup }
            let lookup = Task { await self.find(directory) }
            known[directory] = lookup
            return lookup
        }
        let found = await lookup.value
        if found == nil { known.withLock { if $0[directory] == lookup { $0[directory] = nil } } }
        return found
    }

    private func find(_ directory: FilePath) async -> NFSObjectHandle? {
        if directory.components.isEmpty, directory.isAbsolute { return try? context.rootHandle }
        guard let name = directory.lastComponent, name.kind == .regular else {
            return try? await context.handle(of: directory)
        }
        guard let parent = await handle(of: directory.removingLastComponent()),
              let found = try? await context.lookup(name, in: parent, path: directory) else { return nil }
        if found.stat?.type == .directory { return found.handle }
        // A link (or no attributes): follow it as a path call would.
        return try? await context.handle(of: directory)
    }

    /// `directory`'s handle where it was found or made already: no lookup.
    func handleIfKnown(_ directory: FilePath) async -> NFSObjectHandle? {
        guard let lookup = known.withLock({ $0[directory] }) else { return nil }
        return await lookup.value
    }

    /// Keeps the handle of a directory just made, which its MKDIR answered with.
    func remember(_ directory: FilePath, _ handle: NFSObjectHandle) {
        known.withLock { $0[directory] = Task { handle } }
    }

    /// Forgets `path` and everything below it, once it is removed or renamed.
    func forget(_ path: FilePath) {
        known.withLock { known in
            guard known[path] != nil else { return }
            known = known.filter { !$0.key.starts(with: path) }
        }
    }

    /// A file's directory handle and name, when both can be had.
    func parent(of path: FilePath) async -> (directory: NFSObjectHandle, name: FilePath.Component)? {
        guard let name = path.lastComponent, name.kind == .regular,
              let directory = await handle(of: path.removingLastComponent()) else { return nil }
        return (directory, name)
    }
}

/// A small file read by its handle: one READ per call, the first of which
/// usually brings the whole file and its end.
final class HandleReader: FileReader {
    let file: NFSObjectHandle
    let path: FilePath
    let fileSystem: NFSFileSystem
    private let position = Mutex<(offset: UInt64, ended: Bool)>((0, false))

    init(file: NFSObjectHandle, path: FilePath, fileSystem: NFSFileSystem) {
        self.file = file
        self.path = path
        self.fileSystem = fileSystem
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        let (offset, ended) = position.withLock { ($0.offset, $0.ended) }
        guard !ended, !buffer.isEmpty else { return 0 }
        let reply = try await fileSystem.translate(path) {
            do {
                return try await fileSystem.context.read(file, path: path, offset: offset, into: buffer)
            } catch var error as NFSError where error.code == .staleNFSFileHandle {
                // The handle came from a listing or lookup moments ago: the file is gone, as a path call would say.
                error.code = .noSuchFileOrDirectory
                error.detail = "removed after it was listed"
                throw error
            }
        }
        position.withLock { $0 = ($0.offset + UInt64(reply.count), reply.end || reply.count == 0) }
        return reply.count
    }

    func close() async throws {}
}

/// A small new file written by its handle, each WRITE stable (FILE_SYNC), so
/// its close sends no COMMIT unless the server wrote less stably than asked.
/// A reconnect loses nothing that was answered, hence no ``connectionIdentity``.
final class HandleWriter: FileWriter {
    let file: NFSObjectHandle
    let path: FilePath
    let fileSystem: NFSFileSystem
    private let state = Mutex<(offset: UInt64, uncommitted: Bool)>((0, false))

    init(file: NFSObjectHandle, path: FilePath, fileSystem: NFSFileSystem) {
        self.file = file
        self.path = path
        self.fileSystem = fileSystem
    }

    func write(_ buffer: UnsafeRawBufferPointer) async throws {
        let offset = state.withLock { $0.offset }
        let stable = try await fileSystem.translate(path) {
            try await fileSystem.context.write(file, path: path, offset: offset, bytes: buffer, stable: true)
        }
        state.withLock { $0 = ($0.offset + UInt64(buffer.count), $0.uncommitted || !stable) }
    }

    func skip(_ count: Int) async throws { state.withLock { $0.offset += UInt64(count) } }

    func setSize(_ size: UInt64) async throws {
        try await fileSystem.translate(path) { try await fileSystem.context.setAttributes(file, path: path, size: size) }
    }

    func setPermissions(_ permissions: Int) async throws {
        try await fileSystem.translate(path) {
            try await fileSystem.context.setAttributes(file, path: path, permissions: permissions)
        }
    }

    var connectionIdentity: UInt64? { nil }

    func close() async throws {
        guard state.withLock({ $0.uncommitted }) else { return }
        try await fileSystem.translate(path) { try await fileSystem.context.commit(file, path: path) }
    }
}

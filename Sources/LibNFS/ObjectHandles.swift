import SystemPackage

/// The server's own name for a file or directory (an NFSv3 file handle),
/// for calls that need no path lookup: with a directory's handle, a file in it
/// is looked up, created or renamed in one round trip, where a path call first
/// looks up every component from the export's root.
///
/// A handle stays valid while its object exists, whatever it is renamed to;
/// once the object is gone, calls on it fail with `ESTALE`.
/// These calls are for tools of this package (nfs-cp), not yet a stable API.
@_spi(Handles)
public struct NFSObjectHandle: Sendable, Hashable {
    let bytes: [UInt8]
}

/// A directory entry as READDIRPLUS gives it: its attributes and handle, either of which the server may leave out.
@_spi(Handles)
public struct NFSHandleEntry: Sendable {
    public var name: FilePath.Component
    public var stat: NFSStat?
    public var handle: NFSObjectHandle?
}

@_spi(Handles)
extension NFSContext {
    /// Lists `directory` with READDIRPLUS, as many round trips as its replies take
    /// (``NFSOptions/readdirBufferSize`` bytes each, else 64 KiB); "." and ".." are left out.
    public func list(_ directory: NFSObjectHandle, path: FilePath) async throws -> [NFSHandleEntry] {
        try requireObjectHandles("opendir", path)
        let count = options.readdirBufferSize ?? NFSOptions.defaultReaddirBufferSize
        var entries: [NFSHandleEntry] = []
        var cookie: UInt64 = 0
        var verifier = [UInt8](repeating: 0, count: 8)
        while true {
            let part = try await run(Operations.listPart(directory, path: path, cookie: cookie, verifier: verifier, count: count))
            entries += part.entries
            if part.end { return entries }
            guard let next = part.cookie, next != cookie else {
                throw NFSError(code: .ioError, operation: "opendir", path: path, detail: "the server's listing made no progress")
            }
            (cookie, verifier) = (next, part.verifier)
        }
    }

    /// True where the calls on handles work: an NFSv3 mount (libnfs's NFSv4 client has no such layer).
    public var supportsObjectHandles: Bool { version == .v3 }

    /// The export's root directory's handle, known since the mount: no RPC.
    public var rootHandle: NFSObjectHandle {
        get throws {
            try requireObjectHandles("open", "/")
            return NFSObjectHandle(bytes: rootHandleBytes)
        }
    }

    /// The handle of the file or directory at `path` (following links), found as
    /// `open` finds it: one LOOKUP per component and an ACCESS check for reading.
    public func handle(of path: FilePath) async throws -> NFSObjectHandle {
        try requireObjectHandles("open", path)
        let opened = try await run(Operations.handle(of: path))
        // Not a file anyone reads: its close on NFSv3 sends nothing and may not be cancelled.
        engine.submit(Operations.close(opened.file, path).whenDone { _ in })
        return NFSObjectHandle(bytes: opened.handle)
    }

    /// Looks `name` up in `directory` (one LOOKUP; a link is not followed).
    /// - Parameter path: the path `name` has, for errors.
    /// - Returns: its handle, and its attributes when the server sent them (it may not).
    public func lookup(_ name: FilePath.Component, in directory: NFSObjectHandle,
                       path: FilePath) async throws -> (handle: NFSObjectHandle, stat: NFSStat?) {
        try requireObjectHandles("lookup", path)
        let found = try await run(Operations.lookup(name, in: directory, path: path))
        return (NFSObjectHandle(bytes: found.handle), found.attributes)
    }

    /// Reads at most ``readSize`` bytes at `offset` into `buffer` (one READ).
    /// - Returns: the count read, and whether the file ends after them.
    public func read(_ file: NFSObjectHandle, path: FilePath, offset: UInt64,
                     into buffer: UnsafeMutableRawBufferPointer) async throws -> (count: Int, end: Bool) {
        try requireObjectHandles("read", path)
        let target = UnsafeMutableRawBufferPointer(rebasing: buffer[..<min(buffer.count, readSize)])
        return try await run(Operations.read(file, path: path, offset: offset, into: target))
    }

    /// Writes every byte of `bytes` at `offset`, in WRITEs of ``writeSize``
    /// sent together, or throws.
    /// - Parameter stable: asks the server to have the bytes on stable storage before
    ///   it answers (FILE_SYNC), so that no COMMIT is needed.
    /// - Returns: whether the server wrote all of them stably (else ``commit(_:path:)`` follows).
    @discardableResult
    public func write(_ file: NFSObjectHandle, path: FilePath, offset: UInt64, bytes: UnsafeRawBufferPointer,
                      stable: Bool) async throws -> Bool {
        try requireObjectHandles("write", path)
        try Task.checkCancellation()
        return try await settle(sendWrites(file, path: path, offset: offset, bytes: bytes, stable: stable),
                                file: file, path: path, stable: stable)
    }

    /// Sends the WRITEs of ``write(_:path:offset:bytes:stable:)`` now, with a copy of
    /// `bytes` (which the caller may reuse once this returns), and returns without
    /// waiting: the task ends with their answers as that call would, so that a
    /// writer keeps several in flight (write-behind). Left unawaited, the WRITEs
    /// still run to their end, or to the context's close.
    public func beginWrite(_ file: NFSObjectHandle, path: FilePath, offset: UInt64, bytes: UnsafeRawBufferPointer,
                           stable: Bool) throws -> Task<Bool, any Error> {
        try requireObjectHandles("write", path)
        let writes = sendWrites(file, path: path, offset: offset, bytes: bytes, stable: stable)
        return Task { try await self.settle(writes, file: file, path: path, stable: stable) }
    }

    private struct SentWrite {
        let offset: UInt64
        let bytes: OwnedBytes
        let request: Request<(count: Int, stable: Bool)>
    }

    /// Copies `bytes` into pieces of ``writeSize`` and hands their WRITEs to the engine.
    private func sendWrites(_ file: NFSObjectHandle, path: FilePath, offset: UInt64, bytes: UnsafeRawBufferPointer,
                            stable: Bool) -> [SentWrite] {
        stride(from: 0, to: bytes.count, by: writeSize).map { start in
            let piece = OwnedBytes(copying: UnsafeRawBufferPointer(rebasing: bytes[start..<min(start + writeSize, bytes.count)]))
            let request = Operations.write(file, path: path, offset: offset + UInt64(start), bytes: piece, stable: stable)
            engine.submit(request)
            return SentWrite(offset: offset + UInt64(start), bytes: piece, request: request)
        }
    }

    /// Waits for `writes`; what a short answer left out is sent again. Returns whether all were stable.
    private func settle(_ writes: [SentWrite], file: NFSObjectHandle, path: FilePath, stable: Bool) async throws -> Bool {
        var writes = writes
        var allStable = true
        while !writes.isEmpty {
            var again: [SentWrite] = []
            do {
                for write in writes {
                    let reply = try await write.request.value()
                    let count = min(reply.count, write.bytes.buffer.count)
                    if count == 0 {
                        throw NFSError(code: .ioError, operation: "write", path: path, detail: "the server wrote none of the bytes")
                    }
                    allStable = allStable && reply.stable
                    if count < write.bytes.buffer.count {
                        again += sendWrites(file, path: path, offset: write.offset + UInt64(count),
                                            bytes: UnsafeRawBufferPointer(rebasing: write.bytes.buffer[count...]), stable: stable)
                    }
                }
            } catch {
                for write in writes + again { write.request.finish(error) }
                throw noted(error)
            }
            writes = again
        }
        return allStable
    }

    /// Asks the server to put what was written to `file` on stable storage (COMMIT).
    public func commit(_ file: NFSObjectHandle, path: FilePath) async throws {
        try requireObjectHandles("commit", path)
        try await run(Operations.commit(file, path: path))
    }

    /// Creates the regular file `name` in `directory` with `permissions` (one CREATE).
    /// - Parameter exclusive: fail with `EEXIST` where `name` exists, rather than open it.
    public func create(_ name: FilePath.Component, in directory: NFSObjectHandle, path: FilePath,
                       permissions: Int, exclusive: Bool) async throws -> NFSObjectHandle {
        try requireObjectHandles("create", path)
        if let made = try await run(Operations.create(name, in: directory, path: path, exclusive: exclusive,
                                                      permissions: permissions)) {
            return NFSObjectHandle(bytes: made)
        }
        // The server may leave the handle out of its reply.
        return try await lookup(name, in: directory, path: path).handle
    }

    /// Makes the directory `name` in `directory` with `permissions` (one MKDIR);
    /// `EEXIST` where `name` exists.
    /// - Returns: the new directory's handle.
    public func makeDirectory(_ name: FilePath.Component, in directory: NFSObjectHandle, path: FilePath,
                              permissions: Int) async throws -> NFSObjectHandle {
        try requireObjectHandles("mkdir", path)
        if let made = try await run(Operations.makeDirectory(name, in: directory, path: path, permissions: permissions)) {
            return NFSObjectHandle(bytes: made)
        }
        // The server may leave the handle out of its reply.
        return try await lookup(name, in: directory, path: path).handle
    }

    /// Sets `file`'s permission bits and/or its size (one SETATTR).
    public func setAttributes(_ file: NFSObjectHandle, path: FilePath, permissions: Int? = nil,
                              size: UInt64? = nil) async throws {
        try requireObjectHandles(size != nil ? "truncate" : "chmod", path)
        try await run(Operations.setAttributes(file, path: path, permissions: permissions, size: size))
    }

    /// Renames `name` in `directory` to `newName` in `newDirectory` (one RENAME),
    /// replacing a file there as `rename(2)` does.
    public func rename(_ name: FilePath.Component, in directory: NFSObjectHandle, to newName: FilePath.Component,
                       in newDirectory: NFSObjectHandle, path: FilePath) async throws {
        try requireObjectHandles("rename", path)
        try await run(Operations.rename(name, in: directory, to: newName, in: newDirectory, path: path))
    }

    private func requireObjectHandles(_ operation: String, _ path: FilePath) throws {
        guard supportsObjectHandles else {
            throw NFSError(code: .notSupported, operation: operation, path: path,
                           detail: "calls on file handles need an NFSv3 mount")
        }
    }
}

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

    /// The file `file` names as an ``NFSFileHandle``, with no RPC (no LOOKUP, no
    /// ACCESS check: the server checks each call). Everything a handle does works
    /// the same, its calls going by handle: READs and unstable WRITEs, GETATTR,
    /// SETATTR, and COMMIT for ``NFSFileHandle/fsync()`` and at close where
    /// anything was written (as libnfs's own close does).
    /// - Parameters:
    ///   - path: the path `file` has, for errors and ``NFSFileHandle/name``.
    ///   - flags: `.read` and/or `.write`, and `.append`; the file exists, so
    ///     `.create`, `.exclusive` and `.truncate` are refused (`EINVAL`), and
    ///     `.sync` is not supported (`ENOTSUP`).
    public func open(_ file: NFSObjectHandle, path: FilePath, flags: NFSOpenFlags = .read) async throws -> NFSFileHandle {
        try requireObjectHandles("open", path)
        guard flags.isDisjoint(with: [.create, .exclusive, .truncate]) else {
            throw NFSError(code: .invalidArgument, operation: "open", path: path,
                           detail: "a file opened by handle exists already (truncate it after opening)")
        }
        guard !flags.contains(.sync) else {
            throw NFSError(code: .notSupported, operation: "open", path: path, detail: "a file opened by handle cannot write synchronously")
        }
        let position = flags.contains(.append) ? try await run(Operations.getattr(file, path: path)).size : 0
        return NFSFileHandle(context: self, path: path, target: .handle(file), position: position, flags: flags, ownsContext: false)
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

    /// Copies the first `count` bytes of `file` into the local file `descriptor`, at the
    /// same offsets: READs of ``readSize`` stay in flight, as many as a stream reads ahead
    /// (``readAhead``, cut to what the mount's round trip needs), and the context's service
    /// thread writes each reply's bytes with `pwrite` straight from the reply. So the bytes
    /// are copied once less than through ``read(_:path:offset:into:)`` and a buffer, and
    /// written by the thread that received them, with no thread of the caller's in between.
    ///
    /// Nothing is written past `count`; whether the file goes on past it is checked (by
    /// the READ that reaches it, else one READ of a byte at `count`).
    /// - Parameters:
    ///   - descriptor: open for writing; it must stay open until this returns or throws.
    ///   - progress: called in this task with each READ's count once its bytes are written;
    ///     an error it throws stops the copy (the READs still out are abandoned) and is rethrown.
    /// - Returns: the file's length as the READs found it, at most `count + 1`: `count` when
    ///   it ends there, less when it ended sooner (the bytes past that end are not written),
    ///   `count + 1` when it goes on.
    /// - Throws: ``NFSError`` for a READ; the `Errno` of a failed local write.
    public func read(_ file: NFSObjectHandle, path: FilePath, count: UInt64, writingTo descriptor: FileDescriptor,
                     progress: (Int) throws -> Void = { _ in }) async throws -> UInt64 {
        try requireObjectHandles("read", path)
        let piece = readSize
        let window = max(streamReadAhead / piece, Self.streamMinimumRequests)
        // Replies are taken as they come, not in order: a server answers out of order,
        // and a slot waiting behind a late one would leave the window short meanwhile.
        let (replies, sink) = AsyncStream.makeStream(of: (id: Int, result: Result<Operations.DescriptorRead, any Error>).self)
        defer { sink.finish() }
        var pending: [Int: (offset: UInt64, count: Int, request: Request<Operations.DescriptorRead>)] = [:]
        var sent = 0
        func send(_ offset: UInt64, _ count: Int) {
            let id = sent
            sent += 1
            let request = Operations.read(file, path: path, offset: offset, count: count, writingTo: descriptor)
                .whenDone { sink.yield((id, $0)) }
            pending[id] = (offset, count, request)
            engine.submit(request)
        }
        var next: UInt64 = 0
        var length: UInt64?
        var answers = replies.makeAsyncIterator()
        do {
            try Task.checkCancellation()
            while true {
                while pending.count < window && next < count && length == nil {
                    let size = Int(min(UInt64(piece), count - next))
                    send(next, size)
                    next += UInt64(size)
                }
                guard !pending.isEmpty else { break }
                guard let (id, result) = await answers.next() else { throw CancellationError() }
                guard let (offset, asked, _) = pending.removeValue(forKey: id) else { continue }
                let reply = try result.get()
                if let failure = reply.failure { throw failure }
                try progress(reply.count)
                let end = offset + UInt64(reply.count)
                if reply.end {
                    length = min(length ?? end, end)
                } else if reply.count < asked {
                    // A server may answer short before the end: the rest is read again.
                    guard reply.count > 0 else {
                        throw NFSError(code: .ioError, operation: "read", path: path,
                                       detail: "the server answered a READ at \(offset) with no bytes, before the end of the file")
                    }
                    send(end, asked - reply.count)
                }
            }
            if let length { return length }
            let byte = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 1)
            defer { byte.deallocate() }
            let probe = try await run(Operations.read(file, path: path, offset: count, into: byte))
            return probe.count > 0 ? count + 1 : count
        } catch {
            for (_, _, request) in pending.values { request.finish(error) }
            throw noted(error)
        }
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
        var done = 0
        var allStable = true
        while done < bytes.count {
            let starts = Array(stride(from: done, to: bytes.count, by: writeSize))
            let sizes = starts.map { min(writeSize, bytes.count - $0) }
            let replies = try await runAll(zip(starts, sizes).map { start, size in
                Operations.write(file, path: path, offset: offset + UInt64(start),
                                 bytes: OwnedBytes(copying: UnsafeRawBufferPointer(rebasing: bytes[start..<start + size])),
                                 stable: stable)
            })
            // A piece answered short leaves a gap: what follows it is written again.
            var written = 0
            for (reply, size) in zip(replies, sizes) {
                allStable = allStable && reply.stable
                written += min(reply.count, size)
                if reply.count < size { break }
            }
            if written == 0 {
                throw NFSError(code: .ioError, operation: "write", path: path, detail: "the server wrote none of the bytes")
            }
            done += written
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
        let made = try await run(Operations.create(name, in: directory, path: path, exclusive: exclusive,
                                                   permissions: permissions))
        return try await handle(made, else: name, in: directory, path: path)
    }

    /// The handle a CREATE or MKDIR answered with, or else (the server may leave it out) `name`'s, looked up.
    private func handle(_ made: [UInt8]?, else name: FilePath.Component, in directory: NFSObjectHandle,
                        path: FilePath) async throws -> NFSObjectHandle {
        if let made { return NFSObjectHandle(bytes: made) }
        return try await lookup(name, in: directory, path: path).handle
    }

    /// Makes the directory `name` in `directory` with `permissions` (one MKDIR);
    /// `EEXIST` where `name` exists.
    /// - Returns: the new directory's handle.
    public func makeDirectory(_ name: FilePath.Component, in directory: NFSObjectHandle, path: FilePath,
                              permissions: Int) async throws -> NFSObjectHandle {
        try requireObjectHandles("mkdir", path)
        let made = try await run(Operations.makeDirectory(name, in: directory, path: path, permissions: permissions))
        return try await handle(made, else: name, in: directory, path: path)
    }

    /// Sets `file`'s permission bits and/or its size (one SETATTR).
    public func setAttributes(_ file: NFSObjectHandle, path: FilePath, permissions: Int? = nil,
                              size: UInt64? = nil) async throws {
        try await setAttributes(file, path: path, NFSNewAttributes(permissions: permissions, size: size))
    }

    /// Sets every attribute `attributes` gives, at once (one SETATTR): what
    /// `chmod`, `chown` and `utimes` by path do in a walk and a call each.
    public func setAttributes(_ file: NFSObjectHandle, path: FilePath, _ attributes: NFSNewAttributes) async throws {
        try requireObjectHandles(attributes.operation, path)
        try await run(Operations.setAttributes(file, path: path, attributes))
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

/// What one SETATTR changes (NFSv3's `sattr3`); what is nil stays as it is.
@_spi(Handles) public struct NFSNewAttributes: Sendable {
    /// Permission bits (`0o7777` at most).
    public var permissions: Int?
    public var size: UInt64?
    public var owner: (uid: Int, gid: Int)?
    /// Set as the client gives them, to the nanosecond (the seconds cut to NFSv3's 32 bits).
    public var times: (access: NFSTimestamp, modification: NFSTimestamp)?

    public init(permissions: Int? = nil, size: UInt64? = nil, owner: (uid: Int, gid: Int)? = nil,
                times: (access: NFSTimestamp, modification: NFSTimestamp)? = nil) {
        self.permissions = permissions
        self.size = size
        self.owner = owner
        self.times = times
    }

    /// The call errors name: the one that sets what is given, or `setattr` for several.
    var operation: String {
        let given = [(permissions != nil, "chmod"), (size != nil, "truncate"), (owner != nil, "chown"), (times != nil, "utimes")]
            .filter(\.0)
        return given.count == 1 ? given[0].1 : "setattr"
    }
}

import Dispatch
import SystemPackage
internal import CLibNFS

/// An open file on an NFS share: libnfs-python's `NFSFH`, buffered, throwing and thread-safe.
///
/// Reads are served from a buffer of at least the server's readMax; writes
/// gather in a buffer of writeMax and go out in full-size RPCs. Everything
/// that looks at the file through this handle (reads, ``seek(_:whence:)`` from
/// the end, ``stat()``, ``truncate(_:)``, ``fsync()``, ``close()``) sees what was written.
///
/// ## Closing
/// Call ``close()`` (or use ``NFSContext/withFile(_:mode:_:)``): it sends
/// buffered data and throws if that fails. A handle that is dropped unclosed is
/// flushed and closed in the background, never blocking the thread that dropped
/// it; errors there can only be logged (label `LibNFS`). ``NFSContext/close()``
/// waits for that background work. Using a closed handle throws `EBADF`.
///
/// A handle keeps its ``context`` alive. Its methods may be called from any
/// thread; calls on one handle run one at a time.
public final class NFSFileHandle: Sendable {
    /// The mounted share this file belongs to.
    public let context: NFSContext
    /// The path the file was opened with, relative to the export, byte for byte.
    public let name: FilePath
    /// The Python-style mode the file was opened with (`r`, `w+`, …).
    public let mode: String
    /// The flags the file was opened with.
    public let flags: NFSOpenFlags
    /// True when this handle mounted its own context (``init(url:mode:options:)``) and unmounts it on close.
    private let ownsContext: Bool
    private let state: Locked<State>

    private struct State {
        var fh: FilePointer?
        var position: UInt64
        var buffer: FileBuffer
    }

    init(context: NFSContext, path: FilePath, flags: NFSOpenFlags, permissions: Int, ownsContext: Bool) throws {
        var fh: OpaquePointer?
        try context.call("open", path: path) {
            Syscalls.open($0, path, flags: flags.posixFlags, mode: Int32(truncatingIfNeeded: permissions), &fh)
        }
        guard let fh else {
            throw NFSError(code: .ioError, operation: "open", path: path, detail: "libnfs returned no file handle")
        }
        let io = FileIO(context: context, fh: fh, path: path)
        var position: UInt64 = 0
        if flags.contains(.append) {
            do { position = try io.fstat().size } catch {
                _ = try? context.call("close", path: path) { Syscalls.close($0, fh) }
                throw error
            }
        }
        self.context = context
        self.name = path
        self.flags = flags
        self.mode = flags.modeString
        self.ownsContext = ownsContext
        self.state = Locked(State(
            fh: FilePointer(raw: fh), position: position,
            buffer: FileBuffer(readCapacity: max(context.options.readBufferSize ?? io.readChunk,
                                                 NFSLibrary.hasReadahead ? 1 : context.options.readahead ?? 1, 1),
                               writeCapacity: max(context.options.writeBufferSize ?? io.writeChunk, 1))))
        context.register(self)
    }

    /// Mounts the directory holding the file `url` names and opens the file,
    /// like libnfs-python's module-level `open`. Closing the handle unmounts.
    /// - Throws: ``NFSError`` from the mount or the open.
    public convenience init(url: String, mode: String = "r", options: NFSOptions = .init()) throws {
        let parsed = try NFSURL(url)
        guard let file = parsed.filePath.lastComponent, !parsed.lastComponent.isEmpty else {
            throw NFSError(code: .isDirectory, operation: "open", url: url, detail: "the URL names no file")
        }
        let flags = try NFSOpenFlags(mode: mode)
        let context = try NFSContext(url: parsed.deletingLastComponent.description, options: options)
        do {
            try self.init(context: context, path: FilePath(root: "/", [file]), flags: flags,
                          permissions: 0o644, ownsContext: true)
        } catch {
            try? context.close()
            throw error
        }
    }

    /// A handle dropped while open is closed without blocking the thread that
    /// dropped it: `deinit` only takes the libnfs handle and the unsent bytes
    /// (local work), and a background worker sends those bytes and closes the
    /// file, holding the context alive until it has. ``NFSContext/close()``
    /// waits for that work, so data written before a context is closed lands
    /// before the unmount. A failure there can only be logged (label `LibNFS`,
    /// level error, naming the file and the bytes lost); debug builds also warn
    /// about every handle dropped open. Call ``close()`` to see errors.
    deinit {
        let leftover: (fh: FilePointer, buffer: FileBuffer)? = state.withLock { state in
            guard let fh = state.fh else { return nil }
            defer { state.fh = nil; state.buffer.discard() }
            return (fh, state.buffer)
        }
        guard let leftover else { return }
        #if DEBUG
        NFSContext.logger.warning("NFSFileHandle \(name) was dropped without close(); closing it in the background")
        #endif
        Self.closeInBackground(leftover.fh, buffer: leftover.buffer, name: name, id: ObjectIdentifier(self),
                               context: context, ownsContext: ownsContext)
    }

    private static func closeInBackground(_ fh: FilePointer, buffer: FileBuffer, name: FilePath, id: ObjectIdentifier,
                                          context: NFSContext, ownsContext: Bool) {
        context.backgroundCloses.enter()
        DispatchQueue.global(qos: .utility).async {
            var buffer = buffer
            let pending = buffer.pendingWriteCount
            let io = FileIO(context: context, fh: fh.raw, path: name)
            do { try buffer.flush(io) } catch {
                NFSContext.logger.error("\(name) was dropped without close(); \(pending) buffered bytes were lost: \(error)")
            }
            do { try context.call("close", path: name) { Syscalls.close($0, fh.raw) } } catch {
                NFSContext.logger.error("closing \(name), dropped without close(), failed: \(error)")
            }
            context.unregister(id)
            // Leave before unmounting: close() waits for this very group.
            context.backgroundCloses.leave()
            if ownsContext { try? context.close() }
        }
    }

    private func io(_ fh: OpaquePointer) -> FileIO {
        FileIO(context: context, fh: fh, path: name)
    }

    @discardableResult
    private func withOpenFile<T>(_ operation: String, needs access: NFSOpenFlags = [],
                                 _ body: (inout State, FileIO) throws -> T) throws -> T {
        try state.withLock { state in
            guard let fh = state.fh?.raw else {
                throw NFSError(code: .badFileDescriptor, operation: operation, path: name, detail: "the file is closed")
            }
            if !flags.isSuperset(of: access) {
                let what = access.contains(.write) ? "writing" : "reading"
                throw NFSError(code: .badFileDescriptor, operation: operation, path: name,
                               detail: "the file is not open for \(what) (mode \(mode))")
            }
            return try body(&state, io(fh))
        }
    }

    /// True once ``close()`` has run (or the context was closed).
    public var isClosed: Bool { state.withLock { $0.fh == nil } }

    // MARK: Reading

    /// Reads up to `count` bytes at the current position and advances it.
    /// Returns fewer bytes only at end of file, and an empty array there.
    /// - Throws: ``NFSError``.
    public func read(_ count: Int) throws -> [UInt8] {
        precondition(count >= 0, "read count must not be negative")
        return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = try read(into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    /// Reads into `buffer` at the current position and advances it; returns the
    /// count read, less than `buffer.count` only at end of file.
    /// - Throws: ``NFSError``.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try withOpenFile("read", needs: .read) { state, io in
            let n = try state.buffer.read(at: state.position, into: buffer, io)
            state.position += UInt64(n)
            return n
        }
    }

    /// Reads from the current position to end of file.
    /// - Throws: ``NFSError``.
    public func readAll() throws -> [UInt8] {
        var result: [UInt8] = []
        let size = try stat().size
        let position = try tell()
        if size > position { result.reserveCapacity(Int(clamping: size - position)) }
        while true {
            let chunk = try read(max(context.readMax, 65536))
            if chunk.isEmpty { break }
            result.append(contentsOf: chunk)
        }
        return result
    }

    /// Reads one line, the `\n` stripped (a `\r\n` too); nil at end of file.
    /// Invalid UTF-8 is repaired with U+FFFD.
    /// - Throws: ``NFSError``.
    public func readLine() throws -> String? {
        let bytes = try withOpenFile("read", needs: .read) { state, io in
            let line = try state.buffer.readLine(at: state.position, io)
            state.position += UInt64(line.count)
            return line
        }
        guard !bytes.isEmpty else { return nil }
        var content = bytes[...]
        if content.last == UInt8(ascii: "\n") { content = content.dropLast() }
        if content.last == UInt8(ascii: "\r") { content = content.dropLast() }
        return String(decoding: content, as: UTF8.self)
    }

    /// The remaining lines, read to end of file, without their line ends.
    /// - Throws: ``NFSError``.
    public func lines() throws -> [String] {
        var lines: [String] = []
        while let line = try readLine() { lines.append(line) }
        return lines
    }

    /// Reads up to `count` bytes at `offset` without moving the position; fewer only at end of file.
    /// Maps `nfs_pread`.
    /// - Throws: ``NFSError``.
    public func pread(count: Int, offset: UInt64) throws -> [UInt8] {
        precondition(count >= 0, "read count must not be negative")
        return try withOpenFile("pread", needs: .read) { state, io in
            try state.buffer.flush(io)
            return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                initialized = try io.pread(offset: offset, into: UnsafeMutableRawBufferPointer(buffer))
            }
        }
    }

    // MARK: Writing

    /// Writes every byte of `bytes` at the current position (at end of file in
    /// append mode) and advances it. Bytes may wait in the buffer until
    /// ``flush()``, ``fsync()`` or ``close()``.
    /// - Throws: ``NFSError``; a short write is an error, never silent.
    public func write(_ bytes: some Sequence<UInt8>) throws {
        let done: Void? = try bytes.withContiguousStorageIfAvailable { try write(raw: UnsafeRawBufferPointer($0)) }
        if done == nil {
            let array = Array(bytes)
            try array.withUnsafeBytes { try write(raw: $0) }
        }
    }

    /// Writes `string` as UTF-8. See ``write(_:)-(Sequence<UInt8>)``.
    /// - Throws: ``NFSError``.
    public func write(_ string: String) throws {
        var string = string
        try string.withUTF8 { try write(raw: UnsafeRawBufferPointer($0)) }
    }

    /// Writes the bytes of `buffer`. See ``write(_:)-(Sequence<UInt8>)``.
    /// - Throws: ``NFSError``.
    public func write(raw buffer: UnsafeRawBufferPointer) throws {
        try withOpenFile("write", needs: .write) { state, io in
            guard !buffer.isEmpty else { return }
            if flags.contains(.append) && state.buffer.pendingWriteCount == 0 {
                // Another client may have grown the file since our last write.
                state.position = try io.fstat().size
            }
            try state.buffer.write(buffer, at: state.position, io)
            state.position += UInt64(buffer.count)
        }
    }

    /// Writes every byte of `bytes` at `offset` without moving the position. Maps `nfs_pwrite`.
    /// - Throws: ``NFSError``.
    public func pwrite(_ bytes: some Sequence<UInt8>, offset: UInt64) throws {
        let done: Void? = try bytes.withContiguousStorageIfAvailable { try pwrite(raw: UnsafeRawBufferPointer($0), offset: offset) }
        if done == nil {
            try Array(bytes).withUnsafeBytes { try pwrite(raw: $0, offset: offset) }
        }
    }

    /// Writes every byte of `buffer` at `offset`, unbuffered, without moving the position. Maps `nfs_pwrite`.
    /// - Throws: ``NFSError``.
    public func pwrite(raw buffer: UnsafeRawBufferPointer, offset: UInt64) throws {
        try withOpenFile("pwrite", needs: .write) { state, io in
            try state.buffer.flush(io)
            state.buffer.invalidateRead(from: offset, count: buffer.count)
            try io.pwrite(offset: offset, buffer)
        }
    }

    /// Sends buffered writes to the server (without a COMMIT; see ``fsync()``).
    /// - Throws: ``NFSError``.
    public func flush() throws {
        _ = try withOpenFile("flush") { state, io in try state.buffer.flush(io) }
    }

    /// Sends buffered writes and commits the file to stable storage. Maps `nfs_fsync`.
    /// - Throws: ``NFSError``.
    public func fsync() throws {
        try withOpenFile("fsync") { state, io in
            try state.buffer.flush(io)
            try context.call("fsync", path: name) { Syscalls.fsync($0, io.fh) }
        }
    }

    /// Sets the file's length (default: the current position), cutting or
    /// extending with zeros; the position does not move. Maps `nfs_ftruncate`.
    /// - Throws: ``NFSError``.
    public func truncate(_ length: UInt64? = nil) throws {
        try withOpenFile("truncate", needs: .write) { state, io in
            try state.buffer.flush(io)
            let length = length ?? state.position
            try context.call("truncate", path: name) { Syscalls.ftruncate($0, io.fh, length) }
            state.buffer.invalidateRead(from: 0, count: Int.max)
        }
    }

    // MARK: Position and attributes

    /// Moves the position and returns the new one. Maps `nfs_lseek` (computed locally; `.end` asks the server for the size).
    /// - Throws: ``NFSError`` with `EINVAL` for a position before the start.
    @discardableResult
    public func seek(_ offset: Int64, whence: Whence = .set) throws -> UInt64 {
        try withOpenFile("seek") { state, io in
            let base: Int64
            switch whence {
            case .set: base = 0
            case .current: base = try signedOffset(state.position, "the position")
            case .end:
                try state.buffer.flush(io)
                base = try signedOffset(try io.fstat().size, "the size the server reports")
            }
            let (target, overflow) = base.addingReportingOverflow(offset)
            guard !overflow, target >= 0 else {
                throw NFSError(code: .invalidArgument, operation: "seek", path: name,
                               detail: "position \(base) + \(offset) is before the start of the file")
            }
            state.position = UInt64(target)
            return state.position
        }
    }

    /// `lseek` works in signed offsets; a server can report a size no `Int64` holds.
    private func signedOffset(_ value: UInt64, _ what: String) throws -> Int64 {
        guard let signed = Int64(exactly: value) else {
            throw NFSError(code: .overflow, operation: "seek", path: name,
                           detail: "\(what), \(value), is beyond the largest seekable offset")
        }
        return signed
    }

    /// The current position.
    /// - Throws: ``NFSError`` `EBADF` when closed.
    public func tell() throws -> UInt64 {
        try withOpenFile("tell") { state, _ in state.position }
    }

    /// The file's attributes, buffered writes included. Maps `nfs_fstat64`.
    /// - Throws: ``NFSError``.
    public func stat() throws -> NFSStat {
        try withOpenFile("fstat") { state, io in
            try state.buffer.flush(io)
            return try io.fstat()
        }
    }

    /// Sets the file's permission bits. Maps `nfs_fchmod`.
    /// - Throws: ``NFSError``.
    public func chmod(mode: Int) throws {
        try withOpenFile("chmod") { _, io in
            try context.call("chmod", path: name) { Syscalls.fchmod($0, io.fh, Int32(truncatingIfNeeded: mode & 0o7777)) }
        }
    }

    /// Sets the file's owner and group. Maps `nfs_fchown`.
    func chown(uid: Int32, gid: Int32, operation: String) throws {
        try withOpenFile(operation) { _, io in
            try context.call(operation, path: name) { Syscalls.fchown($0, io.fh, uid, gid) }
        }
    }

    // MARK: Closing

    /// Sends buffered writes and closes the file; safe to call twice.
    /// Maps `nfs_close`. A handle opened with ``init(url:mode:options:)`` also unmounts.
    /// - Throws: the flush or close error; the handle is closed either way.
    public func close() throws {
        let result: Result<Void, any Error> = state.withLock { state in
            guard let fh = state.fh?.raw else { return .success(()) }
            defer { state.fh = nil; state.buffer.discard() }
            var failure: (any Error)?
            do { try state.buffer.flush(io(fh)) } catch { failure = error }
            do { try context.call("close", path: name) { Syscalls.close($0, fh) } } catch {
                if failure == nil { failure = error }
            }
            return failure.map { .failure($0) } ?? .success(())
        }
        context.unregister(ObjectIdentifier(self))
        if ownsContext { try? context.close() }
        try result.get()
    }
}

extension NFSContext {
    /// Opens `path` with a Python-style mode: `r`, `r+`, `w`, `w+`, `a`, `a+`, `x`, `x+` (`b` is accepted and ignored).
    /// New files get `permissions` (default `0o644`). Maps `nfs_open2`.
    /// - Throws: ``NFSError`` (`ENOENT`, `EEXIST` for `x`, `EISDIR`, `EACCES`, `EINVAL` for a bad mode, …).
    public func open(_ path: some NFSPathRepresentable, mode: String = "r", permissions: Int = 0o644) throws -> NFSFileHandle {
        let path = path.nfsFilePath
        let flags: NFSOpenFlags
        do { flags = try NFSOpenFlags(mode: mode) } catch var error as NFSError {
            error.path = path
            throw error
        }
        return try open(path, flags: flags, permissions: permissions)
    }

    /// Opens `path` with explicit flags; new files get `permissions`. Maps `nfs_open2`.
    /// - Throws: ``NFSError``.
    public func open(_ path: some NFSPathRepresentable, flags: NFSOpenFlags, permissions: Int = 0o644) throws -> NFSFileHandle {
        let path = path.nfsFilePath
        if flags.contains(.exclusive) && !flags.contains(.create) {
            throw NFSError(code: .invalidArgument, operation: "open", path: path, detail: "exclusive needs create")
        }
        if flags.contains(.truncate) && !flags.contains(.write) {
            throw NFSError(code: .invalidArgument, operation: "open", path: path, detail: "truncate needs write")
        }
        return try NFSFileHandle(context: self, path: path, flags: flags, permissions: permissions, ownsContext: false)
    }

    /// Opens `path`, runs `body` with the handle, and closes it, like swift-system's `closeAfter`:
    /// when `body` throws, its error wins over a close error.
    /// - Throws: `body`'s error, or the open or close error.
    public func withFile<R>(_ path: some NFSPathRepresentable, mode: String = "r", permissions: Int = 0o644,
                            _ body: (NFSFileHandle) throws -> R) throws -> R {
        let file = try open(path, mode: mode, permissions: permissions)
        let result: R
        do {
            result = try body(file)
        } catch {
            try? file.close()
            throw error
        }
        try file.close()
        return result
    }
}

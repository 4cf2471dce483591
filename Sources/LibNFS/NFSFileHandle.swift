import Dispatch
import SystemPackage
internal import CLibNFS

/// An open file on an NFS share: libnfs-python's `NFSFH`, buffered, throwing and thread-safe.
///
/// Reads are served from a buffer of at least the context's readSize; writes
/// gather in a buffer of writeSize and go out in full-size RPCs. Everything
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
    /// Held by each operation from start to end, RPCs included (see ``Gate``).
    private let gate = Gate()
    private let storage: Storage

    private struct State {
        /// nil once closed.
        var target: FileTarget?
        var position: UInt64
        var buffer: FileBuffer
        /// Set by any operation that needs write access: a file opened by handle COMMITs at close only then.
        var wrote = false
    }

    /// `@unchecked Sendable`: `state` is read and written only while holding `gate` (or in `deinit`).
    /// Operations take it `inout`, so each pays for one exclusivity check, not one per field.
    private final class Storage: @unchecked Sendable {
        var state: State
        init(_ state: State) { self.state = state }
    }

    init(context: NFSContext, path: FilePath, target: FileTarget, position: UInt64, flags: NFSOpenFlags, ownsContext: Bool) {
        let io = FileIO(context: context, target: target, path: path)
        let readCapacity = max(context.options.readBufferSize ?? io.readChunk, 1)
        self.context = context
        self.name = path
        self.flags = flags
        self.mode = flags.modeString
        self.ownsContext = ownsContext
        self.storage = Storage(State(target: target, position: position, buffer: FileBuffer(
            readCapacity: readCapacity,
            writeCapacity: max(context.options.writeBufferSize ?? io.writeChunk, 1),
            readAheadLimit: max(readCapacity, context.streamReadAhead),
            writeBehind: context.options.writeBehind, commitInterval: context.options.commitInterval)))
        context.register(self)
    }

    /// How many readSize RPCs a sequential reader's buffer grows to (its read-ahead).
    static let readAheadRequests = 8

    /// Mounts the directory holding the file `url` names and opens the file,
    /// like libnfs-python's module-level `open`. Closing the handle unmounts.
    /// - Throws: ``NFSError`` from the mount or the open.
    public convenience init(url: String, mode: String = "r", options: NFSOptions = .init()) throws {
        let (parsed, file, flags) = try Self.parseFileURL(url, mode: mode)
        let context = try NFSContext(url: parsed.deletingLastComponent.description, options: options)
        do {
            let opened = try context.openFile(file, flags: flags, permissions: 0o644)
            self.init(context: context, path: file, target: .file(opened.fh), position: opened.position, flags: flags, ownsContext: true)
        } catch {
            try? context.close()
            throw error
        }
    }

    /// ``init(url:mode:options:)``, suspending the task instead of blocking the thread.
    public convenience init(url: String, mode: String = "r", options: NFSOptions = .init()) async throws {
        let (parsed, file, flags) = try Self.parseFileURL(url, mode: mode)
        let context = try await NFSContext(url: parsed.deletingLastComponent.description, options: options)
        do {
            let opened = try await context.openFile(file, flags: flags, permissions: 0o644)
            self.init(context: context, path: file, target: .file(opened.fh), position: opened.position, flags: flags, ownsContext: true)
        } catch {
            try? await context.close()
            throw error
        }
    }

    private static func parseFileURL(_ url: String, mode: String) throws -> (NFSURL, FilePath, NFSOpenFlags) {
        let parsed = try NFSURL(url)
        guard let file = parsed.filePath.lastComponent, !parsed.lastComponent.isEmpty else {
            throw NFSError(code: .isDirectory, operation: "open", url: url, detail: "the URL names no file")
        }
        return (parsed, FilePath(root: "/", [file]), try NFSOpenFlags(mode: mode))
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
        guard let target = storage.state.target else { return }
        let buffer = storage.state.buffer
        let wrote = storage.state.wrote
        storage.state.target = nil
        storage.state.buffer.discard()
        #if DEBUG
        NFSContext.logger.warning("NFSFileHandle \(name) was dropped without close(); closing it in the background")
        #endif
        Self.closeInBackground(FileIO(context: context, target: target, path: name), wrote: wrote, buffer: buffer,
                               id: ObjectIdentifier(self), context: context, ownsContext: ownsContext)
    }

    /// Sends the leftover bytes and closes the file through requests that
    /// call back when done: no thread and no task waits, so a thread blocked
    /// in ``NFSContext/close()`` (on Swift's cooperative pool too) cannot
    /// starve this work.
    private static func closeInBackground(_ io: FileIO, wrote: Bool, buffer: FileBuffer, id: ObjectIdentifier,
                                          context: NFSContext, ownsContext: Bool) {
        let name = io.path
        context.backgroundCloses.enter()
        let finished: @Sendable (Result<Void, any Error>) -> Void = { result in
            if case .failure(let error) = result {
                NFSContext.logger.error("closing \(name), dropped without close(), failed: \(error)")
            }
            context.unregister(id)
            // Leave before unmounting: close() waits for this very group.
            context.backgroundCloses.leave()
            if ownsContext { DispatchQueue.global().async { try? context.close() } }
        }
        let writes = buffer.pendingWrites(io)
        let submitClose: @Sendable () -> Void = {
            guard let close = io.closeRequest(wrote: wrote || !writes.isEmpty) else { return finished(.success(())) }
            context.engine.submit(close.whenDone(finished))
        }
        guard !writes.isEmpty else { return submitClose() }
        let remaining = Locked((count: writes.count, failure: nil as String?))
        for write in writes {
            context.engine.submit(write.request.whenDone { result in
                let done = remaining.withLock { state -> Bool in
                    switch result {
                    case .success(let n) where n == write.count: break
                    case .success(let n): state.failure = state.failure ?? "the server accepted \(n) of \(write.count) bytes"
                    case .failure(let error): state.failure = state.failure ?? "\(error)"
                    }
                    state.count -= 1
                    return state.count == 0
                }
                guard done else { return }
                if let failure = remaining.withLock({ $0.failure }) {
                    NFSContext.logger.error("\(name) was dropped without close(); \(buffer.pendingWriteCount) buffered bytes were lost: \(failure)")
                }
                submitClose()
            })
        }
    }

    /// The open file and its I/O, or the error for a closed file or a missing access right.
    private func openFile(_ operation: String, needs access: NFSOpenFlags) throws -> FileIO {
        guard let target = storage.state.target else {
            throw NFSError(code: .badFileDescriptor, operation: operation, path: name, detail: "the file is closed")
        }
        if !flags.isSuperset(of: access) {
            let what = access.contains(.write) ? "writing" : "reading"
            throw NFSError(code: .badFileDescriptor, operation: operation, path: name,
                           detail: "the file is not open for \(what) (mode \(mode))")
        }
        if access.contains(.write) { storage.state.wrote = true }
        return FileIO(context: context, target: target, path: name)
    }

    @discardableResult
    private func withOpenFile<T>(_ operation: String, needs access: NFSOpenFlags = [],
                                 _ body: (inout State, FileIO) throws -> T) throws -> T {
        try gate.withLock { try body(&storage.state, try openFile(operation, needs: access)) }
    }

    @discardableResult
    private func withOpenFile<T>(_ operation: String, needs access: NFSOpenFlags = [],
                                 _ body: (inout State, FileIO) async throws -> T) async throws -> T {
        try await gate.withLock { try await body(&storage.state, try openFile(operation, needs: access)) }
    }

    /// True once ``close()`` has run (or the context was closed).
    public var isClosed: Bool { gate.withLock { storage.state.target == nil } }

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

    /// ``read(_:)``, suspending the task instead of blocking the thread.
    public func read(_ count: Int) async throws -> [UInt8] {
        precondition(count >= 0, "read count must not be negative")
        let bytes = OwnedBytes(count: count)
        let n = try await read(into: UnsafeMutableRawBufferPointer(rebasing: bytes.buffer[..<count]))
        return Array(UnsafeRawBufferPointer(rebasing: bytes.buffer[..<n]))
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

    /// ``read(into:)``, suspending the task; `buffer` must stay valid until it returns.
    public func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        try await withOpenFile("read", needs: .read) { state, io in
            let n = try await state.buffer.read(at: state.position, into: buffer, io)
            state.position += UInt64(n)
            return n
        }
    }

    /// Says that the file will be read in order from the current position up to
    /// `end` (as `posix_fadvise`'s `POSIX_FADV_SEQUENTIAL`), so the first read
    /// already sends READs ahead up to ``NFSContext/readAhead`` (and no further
    /// than `end`), instead of a few that double with each answer. Sends nothing.
    /// - Throws: ``NFSError`` with `EBADF` once the handle is closed.
    public func adviseSequentialRead(upTo end: UInt64) throws {
        try withOpenFile("read") { state, _ in state.buffer.adviseSequential(upTo: end) }
    }

    /// Reads from the current position to end of file, in pipelined RPCs.
    /// - Throws: ``NFSError``.
    public func readAll() throws -> [UInt8] {
        let expected = try withOpenFile("read", needs: .read) { state, io in
            try state.buffer.flush(io)
            return Self.remaining(try io.fstat().size, after: state.position)
        }
        var result = try read(expected)
        // The file may have grown since the size was taken.
        while case let more = try read(context.readSize), !more.isEmpty { result += more }
        return result
    }

    /// ``readAll()``, suspending the task instead of blocking the thread.
    public func readAll() async throws -> [UInt8] {
        let expected = try await withOpenFile("read", needs: .read) { state, io in
            try await state.buffer.flush(io)
            return Self.remaining(try await io.fstat().size, after: state.position)
        }
        var result = try await read(expected)
        while case let more = try await read(context.readSize), !more.isEmpty { result += more }
        return result
    }

    private static func remaining(_ size: UInt64, after position: UInt64) -> Int {
        size > position ? Int(clamping: size - position) : 0
    }

    /// Reads one line, the `\n` stripped (a `\r\n` too); nil at end of file.
    /// Invalid UTF-8 is repaired with U+FFFD.
    /// - Throws: ``NFSError``.
    public func readLine() throws -> String? {
        Self.line(try withOpenFile("read", needs: .read) { state, io in
            let line = try state.buffer.readLine(at: state.position, io)
            state.position += UInt64(line.count)
            return line
        })
    }

    /// ``readLine()``, suspending the task instead of blocking the thread.
    public func readLine() async throws -> String? {
        Self.line(try await withOpenFile("read", needs: .read) { state, io in
            let line = try await state.buffer.readLine(at: state.position, io)
            state.position += UInt64(line.count)
            return line
        })
    }

    private static func line(_ bytes: [UInt8]) -> String? {
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

    /// ``lines()``, suspending the task instead of blocking the thread.
    public func lines() async throws -> [String] {
        var lines: [String] = []
        while let line = try await readLine() { lines.append(line) }
        return lines
    }

    /// Reads up to `count` bytes at `offset` without moving the position; fewer only at end of file.
    /// Maps `nfs_pread` (in pipelined RPCs of readSize).
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

    /// ``pread(count:offset:)``, suspending the task instead of blocking the thread.
    public func pread(count: Int, offset: UInt64) async throws -> [UInt8] {
        precondition(count >= 0, "read count must not be negative")
        return try await withOpenFile("pread", needs: .read) { state, io in
            try await state.buffer.flush(io)
            let bytes = OwnedBytes(count: count)
            let n = try await io.pread(offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: bytes.buffer[..<count]))
            return Array(UnsafeRawBufferPointer(rebasing: bytes.buffer[..<n]))
        }
    }

    // MARK: Writing

    /// Writes every byte of `bytes` at the current position (at end of file in
    /// append mode) and advances it. Bytes may wait in the buffer until
    /// ``flush()``, ``fsync()`` or ``close()``; with ``NFSOptions/writeBehind``,
    /// sent ones may still be in flight, and their errors come from the next call.
    /// - Throws: ``NFSError``; a short write is an error, never silent.
    public func write(_ bytes: some Sequence<UInt8>) throws {
        let done: Void? = try bytes.withContiguousStorageIfAvailable { try write(raw: UnsafeRawBufferPointer($0)) }
        if done == nil {
            let array = Array(bytes)
            try array.withUnsafeBytes { try write(raw: $0) }
        }
    }

    /// ``write(_:)-(Sequence<UInt8>)``, suspending the task instead of blocking the thread.
    public func write(_ bytes: some Sequence<UInt8>) async throws {
        try await write(slice: Array(bytes)[...])
    }

    /// Writes `string` as UTF-8. See ``write(_:)-(Sequence<UInt8>)``.
    /// - Throws: ``NFSError``.
    public func write(_ string: String) throws {
        var string = string
        try string.withUTF8 { try write(raw: UnsafeRawBufferPointer($0)) }
    }

    /// ``write(_:)-(String)``, suspending the task instead of blocking the thread.
    public func write(_ string: String) async throws {
        try await write(slice: Array(string.utf8)[...])
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

    /// ``write(raw:)``, suspending the task; `buffer` must stay valid until it returns,
    /// and is not read after that (what goes out later is copied).
    public func write(raw buffer: UnsafeRawBufferPointer) async throws {
        try await write(count: buffer.count) { try await $0.write(buffer, at: $1, $2) }
    }

    private func write(slice bytes: ArraySlice<UInt8>) async throws {
        try await write(count: bytes.count) { try await $0.write(bytes, at: $1, $2) }
    }

    /// An async write of `count` bytes at the position, which `send` hands to the buffer.
    private func write(count: Int, _ send: (inout FileBuffer, UInt64, FileIO) async throws -> Void) async throws {
        try await withOpenFile("write", needs: .write) { state, io in
            guard count > 0 else { return }
            if flags.contains(.append) && state.buffer.pendingWriteCount == 0 {
                // Another client may have grown the file since our last write.
                state.position = try await io.fstat().size
            }
            try await send(&state.buffer, state.position, io)
            state.position += UInt64(count)
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

    /// ``pwrite(_:offset:)``, suspending the task instead of blocking the thread.
    public func pwrite(_ bytes: some Sequence<UInt8>, offset: UInt64) async throws {
        let bytes = Array(bytes)[...]
        try await withOpenFile("pwrite", needs: .write) { state, io in
            try await state.buffer.flush(io)
            state.buffer.invalidateRead(from: offset, count: bytes.count)
            try await io.pwrite(offset: offset, bytes)
        }
    }

    /// Writes every byte of `buffer` at `offset`, unbuffered, without moving the position. Maps `nfs_pwrite`
    /// (in pipelined RPCs of writeSize).
    /// - Throws: ``NFSError``.
    public func pwrite(raw buffer: UnsafeRawBufferPointer, offset: UInt64) throws {
        try withOpenFile("pwrite", needs: .write) { state, io in
            try state.buffer.flush(io)
            state.buffer.invalidateRead(from: offset, count: buffer.count)
            try io.pwrite(offset: offset, buffer)
        }
    }

    /// ``pwrite(raw:offset:)``, suspending the task; the bytes are copied before it first suspends.
    public func pwrite(raw buffer: UnsafeRawBufferPointer, offset: UInt64) async throws {
        try await pwrite(Array(buffer), offset: offset)
    }

    /// Sends buffered writes to the server (without a COMMIT; see ``fsync()``).
    /// - Throws: ``NFSError``.
    public func flush() throws {
        try withOpenFile("flush") { state, io in try state.buffer.flush(io) }
    }

    /// ``flush()``, suspending the task instead of blocking the thread.
    public func flush() async throws {
        try await withOpenFile("flush") { state, io in try await state.buffer.flush(io) }
    }

    /// Sends buffered writes and commits the file to stable storage. Maps `nfs_fsync`.
    /// - Throws: ``NFSError``.
    public func fsync() throws {
        try withOpenFile("fsync") { state, io in
            try state.buffer.flush(io)
            try context.run(io.fsyncRequest)
        }
    }

    /// ``fsync()``, suspending the task instead of blocking the thread.
    public func fsync() async throws {
        try await withOpenFile("fsync") { state, io in
            try await state.buffer.flush(io)
            try await context.run(io.fsyncRequest)
        }
    }


    /// Sets the file's length (default: the current position), cutting or
    /// extending with zeros; the position does not move. Maps `nfs_ftruncate`.
    /// - Throws: ``NFSError``.
    public func truncate(_ length: UInt64? = nil) throws {
        try withOpenFile("truncate", needs: .write) { state, io in
            try state.buffer.flush(io)
            try context.run(io.truncateRequest(length ?? state.position))
            state.buffer.invalidateRead(from: 0, count: Int.max)
        }
    }

    /// ``truncate(_:)``, suspending the task instead of blocking the thread.
    public func truncate(_ length: UInt64? = nil) async throws {
        try await withOpenFile("truncate", needs: .write) { state, io in
            try await state.buffer.flush(io)
            try await context.run(io.truncateRequest(length ?? state.position))
            state.buffer.invalidateRead(from: 0, count: Int.max)
        }
    }


    // MARK: Position and attributes

    /// Moves the position and returns the new one. Maps `nfs_lseek` (computed locally; `.end` asks the server for the size).
    /// - Throws: ``NFSError`` with `EINVAL` for a position before the start.
    @discardableResult
    public func seek(_ offset: Int64, whence: Whence = .set) throws -> UInt64 {
        try withOpenFile("seek") { state, io in
            var size: UInt64?
            if whence == .end {
                try state.buffer.flush(io)
                size = try io.fstat().size
            }
            return try move(&state, offset, whence, size: size)
        }
    }

    /// ``seek(_:whence:)``, suspending the task instead of blocking the thread.
    @discardableResult
    public func seek(_ offset: Int64, whence: Whence = .set) async throws -> UInt64 {
        try await withOpenFile("seek") { state, io in
            var size: UInt64?
            if whence == .end {
                try await state.buffer.flush(io)
                size = try await io.fstat().size
            }
            return try move(&state, offset, whence, size: size)
        }
    }

    private func move(_ state: inout State, _ offset: Int64, _ whence: Whence, size: UInt64?) throws -> UInt64 {
        let base: Int64
        switch whence {
        case .set: base = 0
        case .current: base = try signedOffset(state.position, "the position")
        case .end: base = try signedOffset(size ?? 0, "the size the server reports")
        }
        let (target, overflow) = base.addingReportingOverflow(offset)
        guard !overflow, target >= 0 else {
            throw NFSError(code: .invalidArgument, operation: "seek", path: name,
                           detail: "position \(base) + \(offset) is before the start of the file")
        }
        state.position = UInt64(target)
        return state.position
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

    /// ``stat()``, suspending the task instead of blocking the thread.
    public func stat() async throws -> NFSStat {
        try await withOpenFile("fstat") { state, io in
            try await state.buffer.flush(io)
            return try await io.fstat()
        }
    }

    /// Sets the file's permission bits. Maps `nfs_fchmod`.
    /// - Throws: ``NFSError``.
    public func chmod(mode: Int) throws {
        try withOpenFile("chmod") { state, io in
            try state.buffer.waitForWrites(io)
            try context.run(io.chmodRequest(mode))
        }
    }

    /// ``chmod(mode:)``, suspending the task instead of blocking the thread.
    public func chmod(mode: Int) async throws {
        try await withOpenFile("chmod") { state, io in
            try await state.buffer.waitForWrites(io)
            try await context.run(io.chmodRequest(mode))
        }
    }


    /// Sets the file's owner and group. Maps `nfs_fchown`.
    func chown(uid: Int32, gid: Int32, operation: String) throws {
        try withOpenFile(operation) { state, io in
            try state.buffer.waitForWrites(io)
            try context.run(io.chownRequest(uid: uid, gid: gid, operation: operation))
        }
    }

    func chown(uid: Int32, gid: Int32, operation: String) async throws {
        try await withOpenFile(operation) { state, io in
            try await state.buffer.waitForWrites(io)
            try await context.run(io.chownRequest(uid: uid, gid: gid, operation: operation))
        }
    }


    // MARK: Closing

    /// Sends buffered writes and closes the file; safe to call twice.
    /// Maps `nfs_close`. A handle opened with ``init(url:mode:options:)`` also unmounts.
    /// - Throws: the flush or close error; the handle is closed either way.
    public func close() throws {
        let result: Result<Void, any Error> = gate.withLock {
            guard let target = storage.state.target else { return .success(()) }
            defer { storage.state.target = nil; storage.state.buffer.discard() }
            var failure: (any Error)?
            let io = FileIO(context: context, target: target, path: name)
            do { try storage.state.buffer.flush(io) } catch { failure = error }
            if let close = io.closeRequest(wrote: storage.state.wrote) {
                do { try context.run(close) } catch { if failure == nil { failure = error } }
            }
            return failure.map { .failure($0) } ?? .success(())
        }
        context.unregister(ObjectIdentifier(self))
        if ownsContext { try? context.close() }
        try result.get()
    }

    /// ``close()``, suspending the task instead of blocking the thread.
    public func close() async throws {
        let result: Result<Void, any Error> = await gate.withLock {
            guard let target = storage.state.target else { return .success(()) }
            defer { storage.state.target = nil; storage.state.buffer.discard() }
            var failure: (any Error)?
            let io = FileIO(context: context, target: target, path: name)
            do { try await storage.state.buffer.flush(io) } catch { failure = error }
            if let close = io.closeRequest(wrote: storage.state.wrote) {
                do { try await context.run(close) } catch { if failure == nil { failure = error } }
            }
            return failure.map { .failure($0) } ?? .success(())
        }
        context.unregister(ObjectIdentifier(self))
        if ownsContext { try? await context.close() }
        try result.get()
    }
}

extension NFSContext {
    /// Opens `path` with a Python-style mode: `r`, `r+`, `w`, `w+`, `a`, `a+`, `x`, `x+` (`b` is accepted and ignored).
    /// New files get `permissions` (default `0o644`). Maps `nfs_open2`.
    /// - Throws: ``NFSError`` (`ENOENT`, `EEXIST` for `x`, `EISDIR`, `EACCES`, `EINVAL` for a bad mode, …).
    public func open(_ path: some NFSPathRepresentable, mode: String = "r", permissions: Int = 0o644) throws -> NFSFileHandle {
        try open(path, flags: try Self.flags(mode, path.nfsFilePath), permissions: permissions)
    }

    /// ``open(_:mode:permissions:)``, suspending the task instead of blocking the thread.
    public func open(_ path: some NFSPathRepresentable, mode: String = "r", permissions: Int = 0o644) async throws -> NFSFileHandle {
        try await open(path, flags: try Self.flags(mode, path.nfsFilePath), permissions: permissions)
    }

    /// Opens `path` with explicit flags; new files get `permissions`. Maps `nfs_open2`.
    /// - Throws: ``NFSError``.
    public func open(_ path: some NFSPathRepresentable, flags: NFSOpenFlags, permissions: Int = 0o644) throws -> NFSFileHandle {
        let path = path.nfsFilePath
        let opened = try openFile(path, flags: flags, permissions: permissions)
        return NFSFileHandle(context: self, path: path, target: .file(opened.fh), position: opened.position, flags: flags, ownsContext: false)
    }

    /// ``open(_:flags:permissions:)``, suspending the task instead of blocking the thread.
    public func open(_ path: some NFSPathRepresentable, flags: NFSOpenFlags, permissions: Int = 0o644) async throws -> NFSFileHandle {
        let path = path.nfsFilePath
        let opened = try await openFile(path, flags: flags, permissions: permissions)
        return NFSFileHandle(context: self, path: path, target: .file(opened.fh), position: opened.position, flags: flags, ownsContext: false)
    }

    private static func flags(_ mode: String, _ path: FilePath) throws -> NFSOpenFlags {
        do { return try NFSOpenFlags(mode: mode) } catch var error as NFSError {
            error.path = path
            throw error
        }
    }

    private static func openRequest(_ path: FilePath, _ flags: NFSOpenFlags, _ permissions: Int) throws -> Request<FilePointer> {
        if flags.contains(.exclusive) && !flags.contains(.create) {
            throw NFSError(code: .invalidArgument, operation: "open", path: path, detail: "exclusive needs create")
        }
        if flags.contains(.truncate) && !flags.contains(.write) {
            throw NFSError(code: .invalidArgument, operation: "open", path: path, detail: "truncate needs write")
        }
        return Operations.open(path, flags: flags.posixFlags, mode: Int32(truncatingIfNeeded: permissions))
    }

    /// Opens the libnfs file and finds its starting position (the end, in append mode).
    func openFile(_ path: FilePath, flags: NFSOpenFlags, permissions: Int) throws -> (fh: FilePointer, position: UInt64) {
        let fh = try run(try Self.openRequest(path, flags, permissions))
        guard flags.contains(.append) else { return (fh, 0) }
        do { return (fh, try run(Operations.fstat(fh, path)).size) } catch {
            _ = try? run(Operations.close(fh, path))
            throw error
        }
    }

    func openFile(_ path: FilePath, flags: NFSOpenFlags, permissions: Int) async throws -> (fh: FilePointer, position: UInt64) {
        let fh = try await run(try Self.openRequest(path, flags, permissions))
        guard flags.contains(.append) else { return (fh, 0) }
        do { return (fh, try await run(Operations.fstat(fh, path)).size) } catch {
            _ = try? await run(Operations.close(fh, path))
            throw error
        }
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

    /// ``withFile(_:mode:permissions:_:)`` with an async body, run in the caller's isolation (an actor's too).
    public func withFile<R>(_ path: some NFSPathRepresentable, mode: String = "r", permissions: Int = 0o644,
                            isolation: isolated (any Actor)? = #isolation,
                            _ body: (NFSFileHandle) async throws -> R) async throws -> R {
        let file = try await open(path, mode: mode, permissions: permissions)
        let result: R
        do {
            result = try await body(file)
        } catch {
            try? await file.close()
            throw error
        }
        try await file.close()
        return result
    }
}

import SystemPackage

/// What an open file's calls name: the libnfs file that a path open returned,
/// or an NFSv3 file handle (``NFSContext/open(_:path:flags:)``), whose calls go
/// out as single RPCs of libnfs's raw layer.
enum FileTarget: Sendable {
    case file(FilePointer)
    case handle(NFSObjectHandle)
}

/// The unbuffered I/O of one open file: whole-range reads and writes split
/// into RPCs of the context's readSize/writeSize, all submitted to the engine at
/// once so that they are in flight together (the engine's window bounds them).
struct FileIO: Sendable {
    let context: NFSContext
    let target: FileTarget
    let path: FilePath
    /// The largest single read and write RPC: the context's readSize/writeSize.
    let readChunk: Int
    let writeChunk: Int
    /// A READ answered short met the end of the file (see ``VersionQuirks/shortReadIsEndOfFile(_:)``).
    let shortReadEnds: Bool

    /// I/O on `target` in RPCs of the context's readSize/writeSize.
    init(context: NFSContext, target: FileTarget, path: FilePath) {
        self.context = context
        self.target = target
        self.path = path
        self.readChunk = context.readSize
        self.writeChunk = context.writeSize
        // A READ by handle answered short is read on from: only its end flag would tell.
        if case .file = target { shortReadEnds = VersionQuirks.shortReadIsEndOfFile(context.version) } else { shortReadEnds = false }
    }

    /// One READ of at most readChunk bytes into `destination`, answering with the count.
    func readRequest(at offset: UInt64, into destination: UnsafeMutableRawBufferPointer) -> Request<Int> {
        switch target {
        case .file(let fh): Operations.pread(fh, path, offset: offset, into: destination)
        case .handle(let handle): Operations.pread(handle, path: path, offset: offset, into: destination)
        }
    }

    /// One WRITE of `bytes` (unstable by handle; as libnfs sends it for a file), answering with the count.
    func writeRequest(at offset: UInt64, _ bytes: OwnedBytes) -> Request<Int> {
        switch target {
        case .file(let fh): Operations.pwrite(fh, path, offset: offset, bytes: bytes)
        case .handle(let handle): Operations.pwrite(handle, path: path, offset: offset, bytes: bytes)
        }
    }

    var fstatRequest: Request<NFSStat> {
        switch target {
        case .file(let fh): Operations.fstat(fh, path)
        case .handle(let handle): Operations.getattr(handle, path: path)
        }
    }

    /// Puts what was written on stable storage: `nfs_fsync`, or a COMMIT by handle.
    var fsyncRequest: Request<Void> {
        switch target {
        // Marked as using the file: an early COMMIT nobody waits for never meets the close (see FileBuffer).
        case .file(let fh): Operations.status("fsync", path) { Syscalls.fsyncAsync($0, fh.raw, $1) }.using(fh.raw)
        case .handle(let handle): Operations.commit(handle, path: path)
        }
    }

    func truncateRequest(_ length: UInt64) -> Request<Void> {
        switch target {
        case .file(let fh): Operations.status("truncate", path) { Syscalls.ftruncateAsync($0, fh.raw, length, $1) }
        case .handle(let handle): Operations.setAttributes(handle, path: path, NFSNewAttributes(size: length))
        }
    }

    func chmodRequest(_ mode: Int) -> Request<Void> {
        switch target {
        case .file(let fh):
            Operations.status("chmod", path) { Syscalls.fchmodAsync($0, fh.raw, Int32(truncatingIfNeeded: mode & 0o7777), $1) }
        case .handle(let handle): Operations.setAttributes(handle, path: path, NFSNewAttributes(permissions: mode & 0o7777))
        }
    }

    func chownRequest(uid: Int32, gid: Int32, operation: String) -> Request<Void> {
        switch target {
        case .file(let fh): Operations.status(operation, path) { Syscalls.fchownAsync($0, fh.raw, uid, gid, $1) }
        case .handle(let handle):
            Operations.setAttributes(handle, path: path, NFSNewAttributes(owner: (Int(uid), Int(gid))), operation: operation)
        }
    }

    /// What a close sends once the buffered writes are out: libnfs's close (which
    /// COMMITs what the file wrote), or by handle a COMMIT where anything was
    /// written, else nothing.
    func closeRequest(wrote: Bool) -> Request<Void>? {
        switch target {
        case .file(let fh): Operations.close(fh, path)
        case .handle(let handle): wrote ? Operations.commit(handle, path: path) : nil
        }
    }

    /// Reads until `buffer` is full or the file ends; returns the count read.
    func pread(offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var done = 0
        while done < buffer.count {
            let batch = readBatch(offset + UInt64(done), UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
            let step = readProgress(try context.runAll(batch))
            done += step.count
            if step.ended { break }
        }
        return done
    }

    /// ``pread(offset:into:)``, suspending the task; cancellation abandons every read of the batch.
    func pread(offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        var done = 0
        while done < buffer.count {
            let batch = readBatch(offset + UInt64(done), UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
            let step = readProgress(try await context.runAll(batch))
            done += step.count
            if step.ended { break }
        }
        return done
    }

    /// Writes every byte of `bytes` at `offset` or throws; a write the server
    /// accepts none of is an error, never a silent short write.
    func pwrite(offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let batch = writeBatch(offset + UInt64(done), UnsafeRawBufferPointer(rebasing: bytes[done...]))
            done += try writeProgress(try context.runAll(batch), bytes.count - done)
        }
    }

    /// ``pwrite(offset:_:)``, suspending the task. Takes an array slice: each
    /// request copies its piece at submit, so no pointer lives across a suspension.
    func pwrite(offset: UInt64, _ bytes: ArraySlice<UInt8>) async throws {
        var done = 0
        while done < bytes.count {
            let batch = bytes.withUnsafeBytes { writeBatch(offset + UInt64(done), UnsafeRawBufferPointer(rebasing: $0[done...])) }
            done += try writeProgress(try await context.runAll(batch), bytes.count - done)
        }
    }

    func fstat() throws -> NFSStat { try context.run(fstatRequest) }
    func fstat() async throws -> NFSStat { try await context.run(fstatRequest) }

    private func readBatch(_ offset: UInt64, _ buffer: UnsafeMutableRawBufferPointer) -> [Request<Int>] {
        stride(from: 0, to: buffer.count, by: readChunk).map { start in
            let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[start..<min(start + readChunk, buffer.count)])
            return readRequest(at: offset + UInt64(start), into: piece)
        }
    }

    /// The bytes read contiguously from the start of a batch, and whether the
    /// file ended: a read short of its request stops the count there (the
    /// caller reads on from that point, unless this libnfs answers short only
    /// at the end); one that got nothing is end of file. Only a batch's last
    /// read asks for less than readChunk, so "ended" after it answered in full
    /// changes nothing: the buffer is full.
    private func readProgress(_ counts: [Int]) -> (count: Int, ended: Bool) {
        var done = 0
        for count in counts {
            done += count
            if count < readChunk { return (done, count == 0 || shortReadEnds) }
        }
        return (done, false)
    }

    func writeBatch(_ offset: UInt64, _ bytes: UnsafeRawBufferPointer) -> [Request<Int>] {
        writes(offset, bytes).map(\.request)
    }

    /// A WRITE sent without waiting (write-behind), with the bytes it carries.
    struct Write {
        let offset: UInt64
        let bytes: OwnedBytes
        let request: Request<Int>

        /// After the server answered `count`: sends the rest of a short WRITE (and waits);
        /// a WRITE the server accepted none of is an error.
        func finish(_ count: Int, _ io: FileIO) throws {
            guard let rest = try rest(after: count, io) else { return }
            try io.pwrite(offset: offset + UInt64(count), rest)
        }

        func finish(_ count: Int, _ io: FileIO) async throws {
            guard let rest = try rest(after: count, io) else { return }
            try await io.pwrite(offset: offset + UInt64(count), Array(rest)[...])
        }

        private func rest(after count: Int, _ io: FileIO) throws -> UnsafeRawBufferPointer? {
            let size = bytes.buffer.count
            if count >= size { return nil }
            if count <= 0 {
                throw NFSError(code: .ioError, operation: "write", path: io.path, detail: "the server accepted 0 of \(size) bytes")
            }
            return UnsafeRawBufferPointer(rebasing: bytes.buffer[count...])
        }
    }

    /// `bytes` at `offset` as WRITEs of writeSize, each owning a copy of its piece; not yet submitted.
    /// A whole piece is copied into a buffer `spare` hands out (of writeSize bytes, nothing else using it), if any.
    func writes(_ offset: UInt64, _ bytes: UnsafeRawBufferPointer, spare: () -> OwnedBytes? = { nil }) -> [Write] {
        stride(from: 0, to: bytes.count, by: writeChunk).map { start in
            let source = UnsafeRawBufferPointer(rebasing: bytes[start..<min(start + writeChunk, bytes.count)])
            let piece: OwnedBytes
            if source.count == writeChunk, let reused = spare() {
                reused.buffer.copyMemory(from: source)
                piece = reused
            } else {
                piece = OwnedBytes(copying: source)
            }
            let at = offset + UInt64(start)
            return Write(offset: at, bytes: piece, request: writeRequest(at: at, piece))
        }
    }

    /// A READ sent ahead of a sequential reader, into a buffer of its own.
    struct Prefetch {
        let offset: UInt64
        let bytes: OwnedBytes
        let request: Request<Int>
    }

    /// Submits one READ of `count` bytes at `offset` without waiting for it, into
    /// `buffer` (of `count` bytes, nothing else using it) or a new one.
    func prefetch(at offset: UInt64, count: Int, into buffer: OwnedBytes? = nil) -> Prefetch {
        let bytes = buffer ?? OwnedBytes(count: count)
        let request = readRequest(at: offset, into: bytes.buffer)
        context.engine.submit(request)
        return Prefetch(offset: offset, bytes: bytes, request: request)
    }

    private func writeProgress(_ counts: [Int], _ requested: Int) throws -> Int {
        var done = 0
        for count in counts {
            done += count
            if count < writeChunk { break }
        }
        if done == 0 {
            throw NFSError(code: .ioError, operation: "write", path: path,
                           detail: "the server accepted 0 of \(min(requested, writeChunk)) bytes")
        }
        return done
    }
}

extension NFSContext {
    /// Submits every request, then waits for them in order; on the first
    /// failure the rest are abandoned (their replies touch nothing) and it throws.
    func runAll<T: Sendable>(_ requests: [Request<T>]) throws -> [T] {
        for request in requests { engine.submit(request) }
        var values: [T] = []
        values.reserveCapacity(requests.count)
        do {
            for request in requests { values.append(try request.wait()) }
        } catch {
            for request in requests { request.finish(error) }
            throw noted(error)
        }
        return values
    }

    /// ``runAll(_:)``, suspending the task; cancelling it abandons every request.
    func runAll<T: Sendable>(_ requests: [Request<T>]) async throws -> [T] {
        try Task.checkCancellation()
        for request in requests { engine.submit(request) }
        var values: [T] = []
        values.reserveCapacity(requests.count)
        do {
            for request in requests { values.append(try await request.value()) }
        } catch {
            for request in requests { request.finish(error) }
            throw noted(error)
        }
        return values
    }
}

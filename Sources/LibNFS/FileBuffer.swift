internal import CLibNFS
import SystemPackage

/// The unbuffered I/O of one open file: whole-range reads and writes split into
/// RPC-sized pieces, each a call through the context's lock.
struct FileIO {
    let context: NFSContext
    let fh: OpaquePointer
    let path: FilePath
    /// The largest single read and write RPC: the server's readMax/writeMax.
    let readChunk: Int
    let writeChunk: Int

    /// I/O on `fh` in RPCs of the context's readMax/writeMax (64 KiB where the server gave none).
    init(context: NFSContext, fh: OpaquePointer, path: FilePath) {
        self.context = context
        self.fh = fh
        self.path = path
        self.readChunk = context.readMax > 0 ? context.readMax : 65536
        self.writeChunk = context.writeMax > 0 ? context.writeMax : 65536
    }

    /// One read RPC of at most `readChunk` bytes; returns 0 only at end of file.
    func preadOnce(offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = min(buffer.count, readChunk)
        guard count > 0 else { return 0 }
        let n = try context.call("read", path: path) {
            Syscalls.pread($0, fh, offset: offset, count: count, into: buffer.baseAddress!)
        }
        return Int(n)
    }

    /// Reads until `buffer` is full or the file ends; returns the count read.
    func pread(offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = try preadOnce(offset: offset + UInt64(done),
                                  into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Writes every byte of `bytes` at `offset` or throws; a write the server
    /// accepts none of is an error, never a silent short write.
    func pwrite(offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let count = min(bytes.count - done, writeChunk)
            let n = try context.call("write", path: path) {
                Syscalls.pwrite($0, fh, offset: offset + UInt64(done), count: count,
                                from: bytes.baseAddress!.advanced(by: done))
            }
            if n == 0 {
                throw NFSError(code: .ioError, operation: "write", path: path,
                               detail: "the server accepted 0 of \(count) bytes")
            }
            done += Int(n)
        }
    }

    func fstat() throws -> NFSStat {
        var st = nfs_stat_64()
        try context.call("fstat", path: path) { Syscalls.fstat($0, fh, &st) }
        return NFSStat(st)
    }
}

/// A file's read buffer and write buffer, kept consistent with each other:
/// reads flush pending writes first, writes drop the read bytes they overlap.
struct FileBuffer {
    let readCapacity: Int
    let writeCapacity: Int
    private var readBytes: [UInt8] = []
    private var readStart: UInt64 = 0
    private var writeBytes: [UInt8] = []
    private var writeStart: UInt64 = 0

    init(readCapacity: Int, writeCapacity: Int) {
        self.readCapacity = max(readCapacity, 1)
        self.writeCapacity = max(writeCapacity, 1)
    }

    var pendingWriteCount: Int { writeBytes.count }
    private var readEnd: UInt64 { readStart + UInt64(readBytes.count) }
    private var writeEnd: UInt64 { writeStart + UInt64(writeBytes.count) }

    /// Sends the pending writes. On failure they stay pending, so a later flush or close retries them.
    mutating func flush(_ io: FileIO) throws {
        guard !writeBytes.isEmpty else { return }
        let start = writeStart
        try writeBytes.withUnsafeBytes { try io.pwrite(offset: start, $0) }
        writeBytes.removeAll(keepingCapacity: true)
    }

    /// Forgets pending writes (after a failed close, where nothing can send them).
    mutating func discard() {
        writeBytes = []
        readBytes = []
    }

    mutating func invalidateRead(from start: UInt64, count: Int) {
        if start < readEnd && start + UInt64(count) > readStart { readBytes.removeAll(keepingCapacity: true) }
    }

    private mutating func fill(at position: UInt64, _ io: FileIO) throws {
        readStart = position
        readBytes = try [UInt8](unsafeUninitializedCapacity: readCapacity) { buffer, initialized in
            initialized = try io.pread(offset: position, into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    /// Reads up to `destination.count` bytes at `position`; fewer only at end of file.
    mutating func read(at position: UInt64, into destination: UnsafeMutableRawBufferPointer, _ io: FileIO) throws -> Int {
        try flush(io)
        var done = 0
        while done < destination.count {
            let pos = position + UInt64(done)
            if pos >= readStart && pos < readEnd {
                let offset = Int(pos - readStart)
                let n = min(readBytes.count - offset, destination.count - done)
                readBytes.withUnsafeBytes { source in
                    destination.baseAddress!.advanced(by: done)
                        .copyMemory(from: source.baseAddress!.advanced(by: offset), byteCount: n)
                }
                done += n
            } else if destination.count - done >= readCapacity {
                // Large reads go straight into the caller's memory, in RPC-sized pieces.
                let n = try io.pread(offset: pos, into: UnsafeMutableRawBufferPointer(rebasing: destination[done...]))
                done += n
                break
            } else {
                try fill(at: pos, io)
                if readBytes.isEmpty { break }
            }
        }
        return done
    }

    /// Reads through the next `\n` (included) or to end of file; empty at end of file.
    mutating func readLine(at position: UInt64, _ io: FileIO) throws -> [UInt8] {
        try flush(io)
        var line: [UInt8] = []
        var pos = position
        while true {
            if !(pos >= readStart && pos < readEnd) {
                try fill(at: pos, io)
                if readBytes.isEmpty { break }
            }
            let offset = Int(pos - readStart)
            if let newline = readBytes[offset...].firstIndex(of: UInt8(ascii: "\n")) {
                line.append(contentsOf: readBytes[offset...newline])
                break
            }
            line.append(contentsOf: readBytes[offset...])
            pos = readEnd
        }
        return line
    }

    /// Buffers `source` for writing at `position`, sending full buffers as they fill.
    mutating func write(_ source: UnsafeRawBufferPointer, at position: UInt64, _ io: FileIO) throws {
        guard !source.isEmpty else { return }
        invalidateRead(from: position, count: source.count)
        if !writeBytes.isEmpty && writeEnd != position { try flush(io) }
        var rest = source[...]
        var pos = position
        if !writeBytes.isEmpty {
            let take = min(writeCapacity - writeBytes.count, rest.count)
            let keep = writeBytes.count
            writeBytes.append(contentsOf: rest.prefix(take))
            rest = rest.dropFirst(take)
            pos += UInt64(take)
            if writeBytes.count >= writeCapacity {
                do { try flush(io) } catch {
                    // This write throws and the position stays put, so none of its
                    // bytes may wait here to be sent by a later flush or close.
                    writeBytes.removeSubrange(keep...)
                    throw error
                }
            }
        }
        let direct = rest.count - rest.count % writeCapacity
        if direct > 0 {
            try io.pwrite(offset: pos, UnsafeRawBufferPointer(rebasing: rest.prefix(direct)))
            rest = rest.dropFirst(direct)
            pos += UInt64(direct)
        }
        if !rest.isEmpty {
            writeStart = pos
            writeBytes.append(contentsOf: rest)
        }
    }
}

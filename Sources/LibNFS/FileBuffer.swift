/// A file's read buffer and write buffer, kept consistent with each other:
/// reads flush pending writes first, writes drop the read bytes they overlap.
///
/// Sequential reads grow the read buffer, doubling from `readCapacity` up to
/// `readAheadLimit`, and each fill is one pipelined batch of RPCs: that is the
/// read-ahead. Every operation that does I/O has a blocking and an async form;
/// the decisions are shared, only the waiting differs.
struct FileBuffer {
    let readCapacity: Int
    let writeCapacity: Int
    let readAheadLimit: Int
    private var readBytes: [UInt8] = []
    private var readStart: UInt64 = 0
    private var fillSize: Int
    private var writeBytes: [UInt8] = []
    private var writeStart: UInt64 = 0

    init(readCapacity: Int, writeCapacity: Int, readAheadLimit: Int) {
        self.readCapacity = max(readCapacity, 1)
        self.writeCapacity = max(writeCapacity, 1)
        self.readAheadLimit = max(readAheadLimit, self.readCapacity)
        self.fillSize = self.readCapacity
    }

    var pendingWriteCount: Int { writeBytes.count }
    private var readEnd: UInt64 { readStart + UInt64(readBytes.count) }
    private var writeEnd: UInt64 { writeStart + UInt64(writeBytes.count) }

    /// Forgets pending writes (after a failed close, where nothing can send them).
    mutating func discard() {
        writeBytes = []
        readBytes = []
    }

    mutating func invalidateRead(from start: UInt64, count: Int) {
        if start < readEnd && start + UInt64(count) > readStart { readBytes.removeAll(keepingCapacity: true) }
    }

    // MARK: Decisions

    /// Copies what the read buffer holds at `position` into `destination`; 0 when it holds nothing there.
    private func copyBuffered(at position: UInt64, into destination: UnsafeMutableRawBufferPointer) -> Int {
        guard position >= readStart && position < readEnd else { return 0 }
        let offset = Int(position - readStart)
        let count = min(readBytes.count - offset, destination.count)
        readBytes.withUnsafeBytes { source in
            destination.baseAddress!.copyMemory(from: source.baseAddress!.advanced(by: offset), byteCount: count)
        }
        return count
    }

    /// How much the next fill at `position` reads: twice the last when it
    /// continues the last one (a sequential reader), up to the read-ahead limit.
    private mutating func nextFillSize(at position: UInt64) -> Int {
        fillSize = position == readEnd && !readBytes.isEmpty ? min(fillSize * 2, readAheadLimit) : readCapacity
        return fillSize
    }

    /// True when a read of `remaining` bytes should bypass the buffer.
    private func readsDirectly(_ remaining: Int) -> Bool { remaining >= readAheadLimit }

    /// Where a line read at `position` stands: the bytes to add, and whether they end the line.
    private func lineSegment(at position: UInt64) -> (bytes: ArraySlice<UInt8>, complete: Bool)? {
        guard position >= readStart && position < readEnd else { return nil }
        let offset = Int(position - readStart)
        if let newline = readBytes[offset...].firstIndex(of: UInt8(ascii: "\n")) {
            return (readBytes[offset...newline], true)
        }
        return (readBytes[offset...], false)
    }

    /// Adds to the pending bytes what fits of `source`; returns the count taken.
    private mutating func gather(_ source: some Collection<UInt8>) -> Int {
        let take = min(writeCapacity - writeBytes.count, source.count)
        writeBytes.append(contentsOf: source.prefix(take))
        return take
    }

    /// After the pending bytes were sent.
    private mutating func sent() { writeBytes.removeAll(keepingCapacity: true) }

    /// The pending writes as requests of writeSize, for a close nobody waits for.
    func pendingWrites(_ io: FileIO) -> [(request: Request<Int>, count: Int)] {
        let requests = writeBytes.withUnsafeBytes { io.writeBatch(writeStart, $0) }
        return requests.enumerated().map { index, request in
            (request, min(io.writeChunk, writeBytes.count - index * io.writeChunk))
        }
    }

    // MARK: Blocking

    /// Sends the pending writes. On failure they stay pending, so a later flush or close retries them.
    mutating func flush(_ io: FileIO) throws {
        guard !writeBytes.isEmpty else { return }
        let start = writeStart
        try writeBytes.withUnsafeBytes { try io.pwrite(offset: start, $0) }
        sent()
    }

    private mutating func fill(at position: UInt64, _ io: FileIO) throws {
        let size = nextFillSize(at: position)
        readStart = position
        readBytes = try [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            initialized = try io.pread(offset: position, into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    /// Reads up to `destination.count` bytes at `position`; fewer only at end of file.
    mutating func read(at position: UInt64, into destination: UnsafeMutableRawBufferPointer, _ io: FileIO) throws -> Int {
        try flush(io)
        var done = 0
        while done < destination.count {
            let pos = position + UInt64(done)
            let rest = UnsafeMutableRawBufferPointer(rebasing: destination[done...])
            let copied = copyBuffered(at: pos, into: rest)
            if copied > 0 {
                done += copied
            } else if readsDirectly(rest.count) {
                // Large reads go straight into the caller's memory, in pipelined RPCs.
                done += try io.pread(offset: pos, into: rest)
                break
            } else {
                try fill(at: pos, io)
                if readBytes.isEmpty { break }
                // A fill shorter than asked met the end of the file: asking again would only be told so.
                if readBytes.count < fillSize {
                    done += copyBuffered(at: pos, into: rest)
                    break
                }
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
            guard let segment = lineSegment(at: pos) else {
                try fill(at: pos, io)
                if readBytes.isEmpty { break }
                continue
            }
            line.append(contentsOf: segment.bytes)
            pos += UInt64(segment.bytes.count)
            if segment.complete { break }
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
            let keep = writeBytes.count
            let take = gather(rest)
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

    // MARK: Async

    /// ``flush(_:)``, suspending the task.
    mutating func flush(_ io: FileIO) async throws {
        guard !writeBytes.isEmpty else { return }
        try await io.pwrite(offset: writeStart, writeBytes[...])
        sent()
    }

    private mutating func fill(at position: UInt64, _ io: FileIO) async throws {
        let size = nextFillSize(at: position)
        let bytes = OwnedBytes(count: size)
        let count = try await io.pread(offset: position, into: UnsafeMutableRawBufferPointer(rebasing: bytes.buffer[..<size]))
        readStart = position
        readBytes = Array(UnsafeRawBufferPointer(rebasing: bytes.buffer[..<count]))
    }

    /// ``read(at:into:_:)``, suspending the task.
    mutating func read(at position: UInt64, into destination: UnsafeMutableRawBufferPointer, _ io: FileIO) async throws -> Int {
        try await flush(io)
        var done = 0
        while done < destination.count {
            let pos = position + UInt64(done)
            let rest = UnsafeMutableRawBufferPointer(rebasing: destination[done...])
            let copied = copyBuffered(at: pos, into: rest)
            if copied > 0 {
                done += copied
            } else if readsDirectly(rest.count) {
                done += try await io.pread(offset: pos, into: rest)
                break
            } else {
                try await fill(at: pos, io)
                if readBytes.isEmpty { break }
                // A fill shorter than asked met the end of the file: asking again would only be told so.
                if readBytes.count < fillSize {
                    done += copyBuffered(at: pos, into: rest)
                    break
                }
            }
        }
        return done
    }

    /// ``readLine(at:_:)``, suspending the task.
    mutating func readLine(at position: UInt64, _ io: FileIO) async throws -> [UInt8] {
        try await flush(io)
        var line: [UInt8] = []
        var pos = position
        while true {
            guard let segment = lineSegment(at: pos) else {
                try await fill(at: pos, io)
                if readBytes.isEmpty { break }
                continue
            }
            line.append(contentsOf: segment.bytes)
            pos += UInt64(segment.bytes.count)
            if segment.complete { break }
        }
        return line
    }

    /// ``write(_:at:_:)``, suspending the task.
    mutating func write(_ source: ArraySlice<UInt8>, at position: UInt64, _ io: FileIO) async throws {
        guard !source.isEmpty else { return }
        invalidateRead(from: position, count: source.count)
        if !writeBytes.isEmpty && writeEnd != position { try await flush(io) }
        var rest = source[...]
        var pos = position
        if !writeBytes.isEmpty {
            let keep = writeBytes.count
            let take = gather(rest)
            rest = rest.dropFirst(take)
            pos += UInt64(take)
            if writeBytes.count >= writeCapacity {
                do { try await flush(io) } catch {
                    writeBytes.removeSubrange(keep...)
                    throw error
                }
            }
        }
        let direct = rest.count - rest.count % writeCapacity
        if direct > 0 {
            try await io.pwrite(offset: pos, rest.prefix(direct))
            rest = rest.dropFirst(direct)
            pos += UInt64(direct)
        }
        if !rest.isEmpty {
            writeStart = pos
            writeBytes.append(contentsOf: rest)
        }
    }
}

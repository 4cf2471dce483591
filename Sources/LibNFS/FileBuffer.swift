/// A file's read buffer and write buffer, kept consistent with each other:
/// reads flush pending writes first, writes drop the read bytes they overlap.
///
/// **Reading.** The first fill at a position reads `readCapacity`. A reader
/// that goes on sequentially is *streamed*: READs of readSize go out ahead of
/// it, up to `readAheadLimit` bytes, and each one answered and taken is
/// replaced by the next, so the connection carries a full window even while
/// the reader is busy elsewhere (on a 10 ms link, one batch at a time spends
/// most of its time waiting). A read elsewhere, a write or a truncate drops the
/// stream; a READ answered short ends it (end of file).
///
/// **Writing.** Bytes gather in `writeCapacity`; full buffers and large writes
/// go out as WRITEs that the caller does not wait for, up to `writeBehind`
/// bytes in flight (the oldest are waited for beyond that). ``flush(_:)`` waits
/// for all of them, and every operation that looks at the file flushes first,
/// so a failed WRITE is thrown by the next write, flush, fsync, stat or close.
/// Every `commitInterval` bytes answered, a COMMIT goes out that nobody waits
/// for but the next flush (see ``NFSOptions/commitInterval``).
///
/// Every operation that does I/O has a blocking and an async form; the
/// decisions are shared, only the waiting differs.
struct FileBuffer {
    let readCapacity: Int
    let writeCapacity: Int
    let readAheadLimit: Int
    let writeBehind: Int
    let commitInterval: Int
    private var readData = ReadData()
    private var readStart: UInt64 = 0
    /// How much the last fill asked for: a fill answered with less met the end of the file.
    private var lastFill = 0
    private var writeBytes: [UInt8] = []
    private var writeStart: UInt64 = 0
    /// READs sent ahead of a sequential reader, in file order (see the type's comment).
    private var stream: [FileIO.Prefetch] = []
    private var streaming = false
    /// Where the stream's next READ starts.
    private var streamNext: UInt64 = 0
    /// How many READs the stream keeps out: 2 at first, doubling with each one answered
    /// whole up to the read-ahead limit, so a file that ends soon costs few READs past its end.
    private var streamDepth = 2
    /// Where a reader said its sequential reading ends (``adviseSequential(upTo:)``).
    private var sequentialEnd: UInt64?
    /// Buffers of streamed READs already taken, for the next ones: a fresh buffer
    /// is fresh memory the kernel faults in page by page (a 256 MiB download took
    /// 12 000 page faults, a third of its CPU, until the stream reused its buffers).
    private var spareBuffers: [OwnedBytes] = []
    /// The same for write-behind: buffers of WRITEs the server has answered.
    private var spareWriteBuffers: [OwnedBytes] = []
    /// WRITEs sent and not yet waited for, oldest first, and their bytes.
    private var inFlight: [FileIO.Write] = []
    private var inFlightBytes = 0
    /// Where the last WRITE sent ends.
    private var inFlightEnd: UInt64 = 0
    /// Bytes of WRITEs answered since the last COMMIT went out.
    private var answeredSinceCommit = 0
    /// The COMMIT sent early, until a flush has seen it answered.
    private var earlyCommit: Request<Void>?

    /// The bytes of the last fill: a READ's own buffer, so a streamed READ needs no copy to become the buffer.
    private struct ReadData {
        var storage: OwnedBytes?
        var count = 0
        var isEmpty: Bool { count == 0 }
        func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
            try body(storage.map { UnsafeRawBufferPointer(rebasing: $0.buffer[..<count]) } ?? UnsafeRawBufferPointer(start: nil, count: 0))
        }
    }

    init(readCapacity: Int, writeCapacity: Int, readAheadLimit: Int, writeBehind: Int, commitInterval: Int = 0) {
        self.readCapacity = max(readCapacity, 1)
        self.writeCapacity = max(writeCapacity, 1)
        self.readAheadLimit = max(readAheadLimit, self.readCapacity)
        self.writeBehind = max(writeBehind, 0)
        self.commitInterval = max(commitInterval, 0)
    }

    var pendingWriteCount: Int { writeBytes.count }
    private var readEnd: UInt64 { readStart + UInt64(readData.count) }
    private var writeEnd: UInt64 { writeStart + UInt64(writeBytes.count) }

    /// Forgets pending writes (after a failed close, where nothing can send them) and
    /// the read stream. WRITEs already sent are left to finish: nobody waits for them.
    mutating func discard() {
        writeBytes = []
        readData = ReadData()
        dropStream()
        inFlight = []
        inFlightBytes = 0
        spareBuffers = []
        spareWriteBuffers = []
        earlyCommit = nil
    }

    mutating func invalidateRead(from start: UInt64, count: Int) {
        let end = start.addingReportingOverflow(UInt64(clamping: count))
        let last = end.overflow ? UInt64.max : end.partialValue
        if start < max(readEnd, streaming ? streamNext : 0) && last > readStart {
            readData = ReadData()
            dropStream()
        }
    }

    /// Abandons the READs sent ahead: their replies, still due, touch nothing.
    private mutating func dropStream() {
        for read in stream { read.request.finish(CancellationError()) }
        stream = []
        streaming = false
    }

    // MARK: Decisions

    /// Copies what the read buffer holds at `position` into `destination`; 0 when it holds nothing there.
    private func copyBuffered(at position: UInt64, into destination: UnsafeMutableRawBufferPointer) -> Int {
        guard position >= readStart && position < readEnd else { return 0 }
        let offset = Int(position - readStart)
        let count = min(readData.count - offset, destination.count)
        readData.withBytes { source in
            destination.baseAddress!.copyMemory(from: source.baseAddress!.advanced(by: offset), byteCount: count)
        }
        return count
    }

    /// True when a read of `remaining` bytes at `position` should bypass the buffer (and no stream serves it).
    private func readsDirectly(_ remaining: Int, at position: UInt64) -> Bool {
        remaining >= readAheadLimit && !(streaming && stream.first?.offset == position)
    }

    /// Where a line read at `position` stands: the bytes to add, and whether they end the line.
    private func lineSegment(at position: UInt64) -> (bytes: [UInt8], complete: Bool)? {
        guard position >= readStart && position < readEnd else { return nil }
        let offset = Int(position - readStart)
        return readData.withBytes { bytes in
            let rest = bytes[offset...]
            if let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
                return (Array(bytes[offset...newline]), true)
            }
            return (Array(rest), false)
        }
    }

    /// The streamed READ that starts at `position`, after sending READs ahead up to
    /// the read-ahead limit; nil when no stream serves `position`, which starts
    /// one when the reader continues where the last fill ended, or when it asks
    /// for `wanted` bytes, more than the buffer holds: those READs go out
    /// together at once, instead of one READ and then a stream a round trip later.
    private mutating func streamed(at position: UInt64, wanted: Int, _ io: FileIO) -> FileIO.Prefetch? {
        if streaming && stream.first?.offset != position { dropStream() }
        if !streaming {
            let sequential = position == readEnd && !readData.isEmpty && readData.count == lastFill
            let advised = sequentialEnd.map { position < $0 } ?? false
            guard (sequential || advised || wanted > readCapacity) && readAheadLimit > readCapacity else { return nil }
            streaming = true
            streamNext = position
            let ahead = advised ? Int(clamping: sequentialEnd! - position) : wanted
            streamDepth = max(2, (max(ahead, wanted) + io.readChunk - 1) / io.readChunk)
        }
        let depth = min(streamDepth, max(readAheadLimit / io.readChunk, 1))
        // Past an advised end, one READ more is enough to see where the file ends now.
        while stream.count < depth && (stream.isEmpty || sequentialEnd.map { streamNext <= $0 } ?? true) {
            let spare = spareBuffers.popLast()
            let read = io.prefetch(at: streamNext, count: io.readChunk,
                                   into: spare?.buffer.count == io.readChunk ? spare : nil)
            stream.append(read)
            streamNext += UInt64(io.readChunk)
        }
        return stream.removeFirst()
    }

    /// The reader will read from where it is through `end`, in order: the stream
    /// starts with its first read and with as many READs as the read-ahead limit and
    /// `end` allow, rather than 2 doubling with each answer (a round trip or two
    /// lost at the start of a large file on a slow link).
    mutating func adviseSequential(upTo end: UInt64) { sequentialEnd = end }

    /// Takes a streamed READ's answer as the buffer; a short one ends the stream (end of file).
    private mutating func took(_ read: FileIO.Prefetch, count: Int) {
        // The buffer read from last is done with: its READ has answered, and what it held was copied out.
        if let old = readData.storage, spareBuffers.count < 4, old !== read.bytes { spareBuffers.append(old) }
        readStart = read.offset
        readData = ReadData(storage: read.bytes, count: count)
        lastFill = read.bytes.buffer.count
        if count < read.bytes.buffer.count { dropStream() } else { streamDepth = min(streamDepth * 2, 1 << 16) }
    }

    /// Adds to the pending bytes what fits of `source`; returns the count taken.
    private mutating func gather(_ source: some Collection<UInt8>) -> Int {
        let take = min(writeCapacity - writeBytes.count, source.count)
        writeBytes.append(contentsOf: source.prefix(take))
        return take
    }

    /// After the pending bytes were sent.
    private mutating func sent() { writeBytes.removeAll(keepingCapacity: true) }

    /// True when a write at `position` goes on where the pending bytes, or else the WRITEs in flight, end.
    private func continues(at position: UInt64) -> Bool {
        writeBytes.isEmpty ? inFlight.isEmpty || position == inFlightEnd : position == writeEnd
    }

    /// Sends `bytes` at `offset` without waiting; ``settle(_:keeping:)`` waits.
    private mutating func send(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, _ io: FileIO) {
        inFlightEnd = offset + UInt64(bytes.count)
        for write in io.writes(offset, bytes, spare: { spareWriteBuffers.popLast() }) {
            io.context.engine.submit(write.request)
            inFlight.append(write)
            inFlightBytes += write.bytes.buffer.count
        }
    }

    /// The oldest WRITE in flight, once more than `limit` bytes are.
    private mutating func oldest(over limit: Int) -> FileIO.Write? {
        guard !inFlight.isEmpty && inFlightBytes > limit else { return nil }
        let write = inFlight.removeFirst()
        inFlightBytes -= write.bytes.buffer.count
        return write
    }

    /// Keeps an answered WRITE's buffer for a later one: libnfs is done with it once it has
    /// called back (never so for a WRITE abandoned, whose bytes 5.x and later may still be sending).
    private mutating func recycle(_ write: FileIO.Write) {
        if spareWriteBuffers.count < 8 { spareWriteBuffers.append(write.bytes) }
        answeredSinceCommit += write.bytes.buffer.count
    }

    /// Sends a COMMIT without waiting, once a write-behind file has `commitInterval`
    /// bytes answered since the last and no early one is still out.
    private mutating func commitEarly(keeping limit: Int, _ io: FileIO) {
        guard limit > 0, commitInterval > 0, answeredSinceCommit >= commitInterval,
              earlyCommit?.hasFinished ?? true else { return }
        answeredSinceCommit = 0
        let commit = io.fsyncRequest
        io.context.engine.submit(commit)
        earlyCommit = commit
    }

    /// After a WRITE in flight failed: the others are abandoned (those not yet sent never are).
    private mutating func abandonWrites(_ error: any Error, _ io: FileIO) -> any Error {
        for write in inFlight { write.request.finish(error) }
        inFlight = []
        inFlightBytes = 0
        return io.context.noted(error)
    }

    /// The pending writes as requests of writeSize, for a close nobody waits for.
    func pendingWrites(_ io: FileIO) -> [(request: Request<Int>, count: Int)] {
        let requests = writeBytes.withUnsafeBytes { io.writeBatch(writeStart, $0) }
        return requests.enumerated().map { index, request in
            (request, min(io.writeChunk, writeBytes.count - index * io.writeChunk))
        }
    }

    // MARK: Blocking

    /// Waits until at most `limit` bytes of WRITEs are in flight.
    private mutating func settle(_ io: FileIO, keeping limit: Int) throws {
        while let write = oldest(over: limit) {
            do { try write.finish(try write.request.wait(), io) } catch { throw abandonWrites(error, io) }
            recycle(write)
        }
        commitEarly(keeping: limit, io)
        // Its error is not the caller's: the COMMIT that fsync or close sends next says what holds.
        if limit == 0, let commit = earlyCommit { earlyCommit = nil; _ = try? commit.wait() }
    }

    /// Waits for every WRITE in flight (before a call whose order against them matters).
    mutating func waitForWrites(_ io: FileIO) throws { try settle(io, keeping: 0) }

    /// Waits for the WRITEs in flight, then sends the pending bytes. On failure the pending
    /// bytes stay, so a later flush or close retries them.
    mutating func flush(_ io: FileIO) throws {
        try settle(io, keeping: 0)
        guard !writeBytes.isEmpty else { return }
        let start = writeStart
        try writeBytes.withUnsafeBytes { try io.pwrite(offset: start, $0) }
        sent()
    }

    private mutating func fill(at position: UInt64, wanted: Int, _ io: FileIO) throws {
        if let read = streamed(at: position, wanted: wanted, io) {
            let count: Int
            do { count = try read.request.wait() } catch { dropStream(); throw io.context.noted(error) }
            return took(read, count: count)
        }
        let storage = OwnedBytes(count: readCapacity)
        let count = try io.pread(offset: position, into: storage.buffer)
        readStart = position
        readData = ReadData(storage: storage, count: count)
        lastFill = storage.buffer.count
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
            } else if readsDirectly(rest.count, at: pos) {
                // Large reads go straight into the caller's memory, in pipelined RPCs.
                dropStream()
                done += try io.pread(offset: pos, into: rest)
                break
            } else {
                try fill(at: pos, wanted: rest.count, io)
                if readData.isEmpty { break }
                // A fill shorter than asked met the end of the file: asking again would only be told so.
                if readData.count < lastFill {
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
                try fill(at: pos, wanted: 0, io)
                if readData.isEmpty { break }
                continue
            }
            line.append(contentsOf: segment.bytes)
            pos += UInt64(segment.bytes.count)
            if segment.complete { break }
        }
        return line
    }

    /// Buffers `source` for writing at `position`; full buffers and whole multiples of
    /// the buffer's size go out without waiting, within the write-behind limit.
    mutating func write(_ source: UnsafeRawBufferPointer, at position: UInt64, _ io: FileIO) throws {
        guard !source.isEmpty else { return }
        // An earlier WRITE's failure is thrown before any of these bytes are taken. A write
        // elsewhere waits for every WRITE out: two in flight over the same bytes could land in either order.
        if continues(at: position) { try settle(io, keeping: writeBehind) } else { try flush(io) }
        let (rest, undo) = sendWhole(source[...], at: position, io)
        do { try settle(io, keeping: writeBehind) } catch { throw failedWrite(error, undo) }
        writeBytes.append(contentsOf: rest)
    }

    // MARK: Async

    /// ``settle(_:keeping:)``, suspending the task.
    private mutating func settle(_ io: FileIO, keeping limit: Int) async throws {
        while let write = oldest(over: limit) {
            do { try await write.finish(try await write.request.value(), io) } catch { throw abandonWrites(error, io) }
            recycle(write)
        }
        commitEarly(keeping: limit, io)
        if limit == 0, let commit = earlyCommit { earlyCommit = nil; _ = try? await commit.value() }
    }

    /// ``waitForWrites(_:)``, suspending the task.
    mutating func waitForWrites(_ io: FileIO) async throws { try await settle(io, keeping: 0) }

    /// ``flush(_:)``, suspending the task.
    mutating func flush(_ io: FileIO) async throws {
        try await settle(io, keeping: 0)
        guard !writeBytes.isEmpty else { return }
        try await io.pwrite(offset: writeStart, writeBytes[...])
        sent()
    }

    private mutating func fill(at position: UInt64, wanted: Int, _ io: FileIO) async throws {
        if let read = streamed(at: position, wanted: wanted, io) {
            let count: Int
            do { count = try await read.request.value() } catch { dropStream(); throw io.context.noted(error) }
            return took(read, count: count)
        }
        let storage = OwnedBytes(count: readCapacity)
        let count = try await io.pread(offset: position, into: storage.buffer)
        readStart = position
        readData = ReadData(storage: storage, count: count)
        lastFill = storage.buffer.count
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
            } else if readsDirectly(rest.count, at: pos) {
                dropStream()
                done += try await io.pread(offset: pos, into: rest)
                break
            } else {
                try await fill(at: pos, wanted: rest.count, io)
                if readData.isEmpty { break }
                // A fill shorter than asked met the end of the file: asking again would only be told so.
                if readData.count < lastFill {
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
                try await fill(at: pos, wanted: 0, io)
                if readData.isEmpty { break }
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
        try await write(count: source.count, at: position, io) { buffer in
            source.withUnsafeBytes { buffer.sendWhole($0[...], at: position, io) }
        }
    }

    /// ``write(_:at:_:)``, suspending the task. `source` is read only between two suspensions
    /// (what is sent or kept is copied), so a caller that gave up is never read from later.
    mutating func write(_ source: UnsafeRawBufferPointer, at position: UInt64, _ io: FileIO) async throws {
        try await write(count: source.count, at: position, io) { $0.sendWhole(source[...], at: position, io) }
    }

    /// The async writes' one body: `send` hands the bytes to ``sendWhole(_:at:_:)`` without suspending.
    private mutating func write(count: Int, at position: UInt64, _ io: FileIO,
                                sending send: (inout FileBuffer) -> (rest: [UInt8], undo: Undo)) async throws {
        guard count > 0 else { return }
        if continues(at: position) { try await settle(io, keeping: writeBehind) } else { try await flush(io) }
        let (rest, undo) = send(&self)
        do { try await settle(io, keeping: writeBehind) } catch { throw failedWrite(error, undo) }
        writeBytes.append(contentsOf: rest)
    }

    // MARK: Writing, shared

    /// What a write found pending, to put back when it throws.
    private struct Undo {
        let start: UInt64
        let count: Int
        /// The buffer, when the write filled and sent it.
        var sent: [UInt8]?
    }

    /// Adds `source` to the pending bytes, sending a buffer that fills and the whole buffers
    /// that follow (without waiting); returns what is left to buffer (at `writeStart`).
    private mutating func sendWhole(_ source: Slice<UnsafeRawBufferPointer>, at position: UInt64,
                                    _ io: FileIO) -> (rest: [UInt8], undo: Undo) {
        invalidateRead(from: position, count: source.count)
        var undo = Undo(start: writeStart, count: writeBytes.count)
        var rest = source
        var pos = position
        if !writeBytes.isEmpty {
            let take = gather(rest)
            rest = rest.dropFirst(take)
            pos += UInt64(take)
            if writeBytes.count >= writeCapacity {
                let full = writeBytes
                full.withUnsafeBytes { send($0, at: writeStart, io) }
                undo.sent = full
                sent()
            }
        }
        let direct = rest.count - rest.count % writeCapacity
        if direct > 0 {
            send(UnsafeRawBufferPointer(rebasing: rest.prefix(direct)), at: pos, io)
            rest = rest.dropFirst(direct)
            pos += UInt64(direct)
        }
        if writeBytes.isEmpty { writeStart = pos }
        return (Array(rest), undo)
    }

    /// A write that throws leaves the position put, so none of its bytes may wait in the
    /// buffer for a later flush or close to send; the bytes pending before it stay pending.
    private mutating func failedWrite(_ error: any Error, _ undo: Undo) -> any Error {
        writeBytes = Array((undo.sent ?? writeBytes).prefix(undo.count))
        writeStart = undo.start
        return error
    }
}

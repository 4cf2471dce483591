import Crypto
import Foundation
import Synchronization

/// A source that changed size while it was copied.
public struct SourceChanged: Error, CustomStringConvertible {
    public let path: String
    public let expected: UInt64
    public let grew: Bool
    public let actual: UInt64
    public var description: String {
        grew ? "\(path) grew during the copy (it had \(expected) bytes when the copy started); not copied"
             : "\(path) shrank during the copy (expected \(expected) bytes, found \(actual)); not copied"
    }
}

/// Copies exactly `size` bytes from `reader` to `writer`.
///
/// A child task reads (and hashes, in order) up to ``transferDepth`` chunks
/// ahead while this task writes, so both sides stay busy and an uneven write
/// does not stall the reads; on NFS each chunk is several READ or WRITE RPCs in
/// flight at once (see `NFSFileSystem.chunkSize`), beside the reads the library
/// streams ahead and the writes it sends behind.
/// Returns the SHA-256 of the bytes when `hashing`. A source that ends early or
/// has bytes past `size` ends in ``SourceChanged`` rather than a loop;
/// ``Interrupt`` is checked between chunks. With `sparse`, blocks of
/// ``sparseBlock`` zero bytes are skipped rather than written (see ``SparseWriter``).
func transfer(from reader: any FileReader, to writer: any FileWriter, size: UInt64, chunkSize: Int,
              sourceName: String, hashing: Bool, sparse: Bool = false, progress: ProgressLine) async throws -> [UInt8]? {
    // A file smaller than a chunk needs one buffer of its size (plus the byte that checks its end).
    let needed = size < UInt64(chunkSize) ? Int(size) + 1 : chunkSize
    let chunks = ChunkReader(reader, size: size, chunkSize: needed, sourceName: sourceName, hashing: hashing)
    let queue = ChunkQueue(depth: size < UInt64(chunkSize) ? 1 : transferDepth, chunkSize: needed)
    let sparseWriter = sparse ? SparseWriter(writer) : nil
    let destination = sparseWriter ?? writer
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            defer { queue.end() }
            while let buffer = await queue.freeBuffer(), let chunk = try await chunks.next(into: buffer) {
                queue.put(chunk)
            }
        }
        do {
            while let chunk = await queue.take() {
                try Interrupt.check()
                try await destination.write(UnsafeRawBufferPointer(rebasing: chunk.buffer.bytes[..<chunk.count]))
                progress.add(bytes: chunk.count)
                queue.giveBack(chunk.buffer)
            }
        } catch {
            // The reader stops at its next buffer; the group waits for it.
            queue.close()
            throw error
        }
        try await group.waitForAll()
    }
    try await sparseWriter?.finish(size: size)
    return chunks.digest
}

/// How many chunks a transfer holds at once: read ahead of the write, or being written.
/// Two: on NFS the library already reads ahead and writes behind, and a third chunk
/// measured no faster at 10 ms while 16 files of 64 MiB downloaded held 176–187 MiB
/// resident against 160–165 MiB with two.
let transferDepth = 2

/// The hand-off between a transfer's reading task and its writing one: chunks
/// read and not yet written, and buffers free to read into, `depth` buffers in all.
final class ChunkQueue: Sendable {
    typealias Chunk = (buffer: ChunkBuffer, count: Int)

    private struct State {
        var ready: [Chunk] = []
        var free: [ChunkBuffer] = []
        var made = 0
        /// The reader has no more (the end, or its error, which the task group carries).
        var ended = false
        /// The writer stopped: the reader must not read on.
        var closed = false
        var reader: CheckedContinuation<ChunkBuffer?, Never>?
        var writer: CheckedContinuation<Chunk?, Never>?
    }

    private let state = Mutex(State())
    private let depth: Int
    private let chunkSize: Int

    init(depth: Int, chunkSize: Int) {
        self.depth = depth
        self.chunkSize = chunkSize
    }

    /// A buffer to read the next chunk into, once one is free; nil once the writer stopped.
    func freeBuffer() async -> ChunkBuffer? {
        enum Next { case stop, make, have(ChunkBuffer), wait }
        let next = state.withLock { s -> Next in
            if s.closed { return .stop }
            if let buffer = s.free.popLast() { return .have(buffer) }
            if s.made < depth { s.made += 1; return .make }
            return .wait
        }
        switch next {
        case .stop: return nil
        // Made when first needed: a small file costs one buffer of its size.
        case .make: return ChunkBuffer(count: chunkSize)
        case .have(let buffer): return buffer
        case .wait:
            return await withCheckedContinuation { continuation in
                let now = state.withLock { s -> ChunkBuffer?? in
                    if s.closed { return .some(nil) }
                    if let buffer = s.free.popLast() { return .some(buffer) }
                    s.reader = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        }
    }

    /// Hands a chunk read to the writer.
    func put(_ chunk: Chunk) { handOver(chunk, to: \.writer, else: \.ready) }

    /// The reader is done; the writer takes what is left, then nil.
    func end() { stop(\.ended, waking: \.writer) }

    /// The next chunk to write, in order; nil when the reader is done and nothing is left.
    func take() async -> Chunk? {
        await withCheckedContinuation { continuation in
            let now = state.withLock { s -> Chunk?? in
                if !s.ready.isEmpty { return .some(s.ready.removeFirst()) }
                if s.ended { return .some(nil) }
                s.writer = continuation
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    /// A buffer written, free to read into again.
    func giveBack(_ buffer: ChunkBuffer) { handOver(buffer, to: \.reader, else: \.free) }

    /// The writer stopped: a reader waiting for a buffer, or asking next, gets nil.
    func close() { stop(\.closed, waking: \.reader) }

    /// Resumes the side waiting for `value`, or keeps it for that side's next ask.
    private func handOver<T: Sendable>(_ value: T, to waiter: WritableKeyPath<State, CheckedContinuation<T?, Never>?>,
                             else store: WritableKeyPath<State, [T]>) {
        let waiting = state.withLock { s -> CheckedContinuation<T?, Never>? in
            if let waiting = s[keyPath: waiter] {
                s[keyPath: waiter] = nil
                return waiting
            }
            s[keyPath: store].append(value)
            return nil
        }
        waiting?.resume(returning: value)
    }

    /// Sets `flag` and gives nil to the side waiting, if it is.
    private func stop<T: Sendable>(_ flag: WritableKeyPath<State, Bool>, waking waiter: WritableKeyPath<State, CheckedContinuation<T?, Never>?>) {
        let waiting = state.withLock { s -> CheckedContinuation<T?, Never>? in
            s[keyPath: flag] = true
            defer { s[keyPath: waiter] = nil }
            return s[keyPath: waiter]
        }
        waiting?.resume(returning: nil)
    }

}

/// Memory for one chunk, kept at one address while reads and writes that await use it.
final class ChunkBuffer: @unchecked Sendable {
    // Used by one read or one write at a time: the transfer awaits each before it hands the buffer on.
    let bytes: UnsafeMutableRawBufferPointer

    /// Left uninitialized (only the bytes a read filled are ever looked at), so a
    /// small file costs no more than its size and no chunk is zeroed first.
    init(count: Int) { bytes = .allocate(byteCount: max(1, count), alignment: 16) }
    deinit { bytes.deallocate() }
}

/// Reads a source chunk by chunk, checking that it ends where its size said, and hashing it in order.
final class ChunkReader: @unchecked Sendable {
    // One `next` at a time: the transfer awaits each before it asks for the following one.
    private let reader: any FileReader
    private let size: UInt64
    private let chunkSize: Int
    private let sourceName: String
    private var hasher: SHA256?
    private var offset: UInt64 = 0
    private var ended = false
    /// The SHA-256 of everything read, once the end was reached (with hashing).
    private(set) var digest: [UInt8]?

    init(_ reader: any FileReader, size: UInt64, chunkSize: Int, sourceName: String, hashing: Bool) {
        self.reader = reader
        self.size = size
        self.chunkSize = chunkSize
        self.sourceName = sourceName
        self.hasher = hashing ? SHA256() : nil
    }

    /// The next chunk, read into `buffer` (or a new one); nil at the end.
    func next(into buffer: ChunkBuffer?) async throws -> ChunkQueue.Chunk? {
        if ended { return nil }
        let buffer = buffer ?? ChunkBuffer(count: chunkSize)
        // Every read asks for up to one byte more than is left. Readers return less
        // than asked only at the end of the file, so a short answer ends the copy
        // without a read of its own; with nothing left, that one byte tells a grown
        // source from a finished one, without reading on forever.
        let remaining = size - offset
        let want = Int(min(UInt64(chunkSize), remaining == .max ? remaining : remaining + 1))
        let n = try await reader.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[..<want]))
        let grew = UInt64(n) > remaining
        if n < want {
            ended = true
            if UInt64(n) < remaining {
                throw SourceChanged(path: sourceName, expected: size, grew: false, actual: offset + UInt64(n))
            }
        }
        if grew { throw SourceChanged(path: sourceName, expected: size, grew: true, actual: offset + UInt64(n)) }
        hasher?.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer.bytes[..<n]))
        offset += UInt64(n)
        if ended { digest = hasher.map { Array($0.finalize()) } }
        return n > 0 ? (buffer, n) : nil
    }
}

/// The size of the zero blocks `--sparse` leaves unwritten: the block size of
/// common file systems, so a skipped block is one the destination need not allocate.
let sparseBlock = 4096

/// Writes what it is given except whole blocks of zeros (aligned in the file),
/// which it skips, so the destination keeps holes there; ``finish(size:)``
/// then sets the size, in case the file ends in a hole. Runs of data between
/// holes go out as single writes.
final class SparseWriter: FileWriter, @unchecked Sendable {
    // Used by one transfer, one write at a time.
    private let writer: any FileWriter
    private var position: UInt64 = 0
    private var endsInHole = false

    init(_ writer: any FileWriter) { self.writer = writer }

    func write(_ buffer: UnsafeRawBufferPointer) async throws {
        let base = position
        // The block of the file that starts at `i` (cut short by the buffer's end), and
        // whether it is a whole block of zeros; a partial block always counts as data.
        func block(at i: Int) -> (end: Int, zero: Bool) {
            let end = min(i + sparseBlock - Int((base + UInt64(i)) % UInt64(sparseBlock)), buffer.count)
            return (end, end - i == sparseBlock && Self.isZero(UnsafeRawBufferPointer(rebasing: buffer[i..<end])))
        }
        var start = 0
        while start < buffer.count {
            var (end, zero) = block(at: start)
            while end < buffer.count {
                let next = block(at: end)
                guard next.zero == zero else { break }
                end = next.end
            }
            let run = UnsafeRawBufferPointer(rebasing: buffer[start..<end])
            if zero { try await writer.skip(run.count) } else { try await writer.write(run) }
            endsInHole = zero
            position += UInt64(run.count)
            start = end
        }
    }

    func skip(_ count: Int) async throws {
        try await writer.skip(count)
        position += UInt64(count)
        endsInHole = true
    }

    /// Gives the file its full size when it ends in a hole.
    func finish(size: UInt64) async throws {
        if endsInHole { try await writer.setSize(size) }
    }

    func setSize(_ size: UInt64) async throws { try await writer.setSize(size) }
    func setPermissions(_ permissions: Int) async throws { try await writer.setPermissions(permissions) }
    var connectionIdentity: UInt64? { writer.connectionIdentity }
    func close() async throws { try await writer.close() }

    static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        var any: UInt64 = 0
        while i + 32 <= bytes.count {
            any |= bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                | bytes.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
                | bytes.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self)
                | bytes.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self)
            if any != 0 { return false }
            i += 32
        }
        while i < bytes.count {
            if bytes[i] != 0 { return false }
            i += 1
        }
        return true
    }
}

/// The SHA-256 of everything `reader` yields.
func sha256(of reader: any FileReader, chunkSize: Int) async throws -> [UInt8] {
    var hasher = SHA256()
    let buffer = ChunkBuffer(count: chunkSize)
    while true {
        try Interrupt.check()
        let n = try await reader.read(into: buffer.bytes)
        if n == 0 { break }
        hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer.bytes[..<n]))
    }
    return Array(hasher.finalize())
}

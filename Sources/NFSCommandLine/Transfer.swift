import Crypto
import Foundation

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
/// The next chunk is read (and hashed, in order) while this one is written, so
/// both sides stay busy; on NFS each chunk is several READ or WRITE RPCs in
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
    let sparseWriter = sparse ? SparseWriter(writer) : nil
    let destination = sparseWriter ?? writer
    var current = try await chunks.next(into: nil)
    var spare: ChunkBuffer?
    while let chunk = current {
        try Interrupt.check()
        // Structured: a write that throws cancels the read in flight and waits for it.
        let free = spare
        async let following = chunks.next(into: free)
        try await destination.write(UnsafeRawBufferPointer(rebasing: chunk.buffer.bytes[..<chunk.count]))
        progress.add(bytes: chunk.count)
        current = try await following
        spare = chunk.buffer
    }
    try await sparseWriter?.finish(size: size)
    return chunks.digest
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
    func next(into buffer: ChunkBuffer?) async throws -> (buffer: ChunkBuffer, count: Int)? {
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

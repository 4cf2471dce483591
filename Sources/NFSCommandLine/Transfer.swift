import Crypto
import Dispatch
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
/// One thread reads (and hashes, in order) while the calling thread writes,
/// so reading the next chunk overlaps writing this one; on NFS each chunk is
/// several READ or WRITE RPCs in flight at once (see `NFSFileSystem.chunkSize`).
/// Returns the SHA-256 of the bytes when `hashing`. A source that ends early or
/// has bytes past `size` ends in ``SourceChanged`` rather than a loop;
/// ``Interrupt`` is checked between chunks. With `sparse`, blocks of
/// ``sparseBlock`` zero bytes are skipped rather than written (see ``SparseWriter``).
func transfer(from reader: any FileReader, to writer: any FileWriter, size: UInt64, chunkSize: Int,
              sourceName: String, hashing: Bool, sparse: Bool = false, progress: ProgressLine) throws -> [UInt8]? {
    // A file smaller than a chunk needs one buffer of its size (plus the byte that checks its end).
    let needed = size < UInt64(chunkSize) ? Int(size) + 1 : chunkSize
    let pipe = Pipe(depth: 3, chunkSize: needed)
    Thread.detachNewThread {
        pipe.produce(from: reader, size: size, sourceName: sourceName, hashing: hashing)
    }
    defer { pipe.cancelAndWait() }
    let sparseWriter = sparse ? SparseWriter(writer) : nil
    pipe.consume(sparseWriter ?? writer, progress: progress)
    let digest = try pipe.outcome()
    try sparseWriter?.finish(size: size)
    return digest
}

/// The size of the zero blocks `--sparse` leaves unwritten: the block size of
/// common file systems, so a skipped block is one the destination need not allocate.
let sparseBlock = 4096

/// Writes what it is given except whole blocks of zeros (aligned in the file),
/// which it skips, so the destination keeps holes there; ``finish(size:)``
/// then sets the size, in case the file ends in a hole. Runs of data between
/// holes go out as single writes.
final class SparseWriter: FileWriter, @unchecked Sendable {
    // Used by the one writing thread only.
    private let writer: any FileWriter
    private var position: UInt64 = 0
    private var endsInHole = false

    init(_ writer: any FileWriter) { self.writer = writer }

    func write(_ buffer: UnsafeRawBufferPointer) throws {
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
            if zero { try writer.skip(run.count) } else { try writer.write(run) }
            endsInHole = zero
            position += UInt64(run.count)
            start = end
        }
    }

    func skip(_ count: Int) throws {
        try writer.skip(count)
        position += UInt64(count)
        endsInHole = true
    }

    /// Gives the file its full size when it ends in a hole.
    func finish(size: UInt64) throws {
        if endsInHole { try writer.setSize(size) }
    }

    func setSize(_ size: UInt64) throws { try writer.setSize(size) }
    func setPermissions(_ permissions: Int) throws { try writer.setPermissions(permissions) }
    var connectionIdentity: UInt64? { writer.connectionIdentity }
    func close() throws { try writer.close() }

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

/// Runs `first` on a thread of its own while the calling thread runs `second`
/// (reading both sides of a comparison at once); both have ended when it returns.
func bothSides<A: Sendable, B>(_ first: @escaping @Sendable () throws -> A, _ second: () throws -> B) throws -> (A, B) {
    let result = Mutex<Result<A, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        let outcome = Result { try first() }
        result.withLock { $0 = outcome }
        done.signal()
    }
    let secondResult = Result { try second() }
    done.wait()
    let firstResult = result.withLock { $0! }
    return (try firstResult.get(), try secondResult.get())
}

/// The SHA-256 of everything `reader` yields.
func sha256(of reader: any FileReader, chunkSize: Int) throws -> [UInt8] {
    var hasher = SHA256()
    var buffer = [UInt8](repeating: 0, count: chunkSize)
    while true {
        try Interrupt.check()
        let n = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
        if n == 0 { break }
        buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<n])) }
    }
    return Array(hasher.finalize())
}

/// A bounded hand-off of buffers from the reading thread to the writing one.
private final class Pipe: Sendable {
    enum Item: Sendable {
        case data([UInt8], count: Int)
        /// Everything was read; carries the digest when hashing.
        case end([UInt8]?)
        case failure(any Error)
    }

    private let filled = DispatchSemaphore(value: 0)
    private let free: DispatchSemaphore
    private let finished = DispatchSemaphore(value: 0)
    private let queue = Mutex<[Item]>([])
    private let spare: Mutex<[[UInt8]]>
    private let cancelled = Atomic<Bool>(false)
    /// The first error of either thread, and the end the reader reached; combined by ``outcome()``.
    private let firstError = Mutex<(any Error)?>(nil)
    private let end = Mutex<(digest: [UInt8]?, reached: Bool)>((nil, false))
    private let chunkSize: Int

    init(depth: Int, chunkSize: Int) {
        self.chunkSize = chunkSize
        // libdispatch traps when a semaphore is freed with a value below the one it was
        // created with (as after an interrupted copy), so count the buffers in by signalling.
        free = DispatchSemaphore(value: 0)
        for _ in 0..<depth { free.signal() }
        spare = Mutex([])
    }

    /// A spare buffer, or a new one: made when first needed, and left
    /// uninitialized (only the bytes a read filled are ever looked at), so a
    /// small file costs no more than its size and no chunk is zeroed first.
    private func takeBuffer() -> [UInt8] {
        if let buffer = spare.withLock({ $0.popLast() }) { return buffer }
        return [UInt8](unsafeUninitializedCapacity: chunkSize) { _, count in count = chunkSize }
    }

    private func push(_ item: Item) {
        queue.withLock { $0.append(item) }
        filled.signal()
    }

    private func fail(_ error: any Error) {
        firstError.withLock { if $0 == nil { $0 = error } }
        cancelled.store(true, ordering: .releasing)
        push(.failure(error))
    }

    /// Runs on the writing thread until the end, a failure, or cancellation.
    func consume(_ writer: any FileWriter, progress: ProgressLine) {
        while true {
            filled.wait()
            let item = queue.withLock { $0.removeFirst() }
            switch item {
            case .data(let buffer, let count):
                if !cancelled.load(ordering: .acquiring) {
                    do {
                        try Interrupt.check()
                        try buffer.withUnsafeBytes { bytes in
                            let part = UnsafeRawBufferPointer(rebasing: bytes[..<count])
                            try writer.write(part)
                        }
                        progress.add(bytes: count)
                    } catch {
                        fail(error)
                    }
                }
                spare.withLock { $0.append(buffer) }
                free.signal()
            case .end(let digest):
                end.withLock { $0 = (digest, true) }
                return
            case .failure:
                return
            }
        }
    }

    /// The digest, or the first error; call after the consumer has returned.
    func outcome() throws -> [UInt8]? {
        if let error = firstError.withLock({ $0 }) { throw error }
        let (digest, reached) = end.withLock { $0 }
        guard reached else { throw CancellationError() }
        return digest
    }

    /// Runs on the reading thread until the source is read, fails, or the writers stop.
    func produce(from reader: any FileReader, size: UInt64, sourceName: String, hashing: Bool) {
        defer { finished.signal() }
        var hasher = hashing ? SHA256() : nil
        var offset: UInt64 = 0
        while true {
            free.wait()
            if cancelled.load(ordering: .acquiring) { return }
            var buffer = takeBuffer()
            do {
                // Every read asks for up to one byte more than is left. Readers return less
                // than asked only at the end of the file, so a short answer ends the copy
                // without a read of its own; with nothing left, that one byte tells a grown
                // source from a finished one, without reading on forever.
                let remaining = size - offset
                let want = Int(min(UInt64(chunkSize), remaining == .max ? remaining : remaining + 1))
                let n = try buffer.withUnsafeMutableBytes {
                    try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<want]))
                }
                let ended = n < want
                let grew = UInt64(n) > remaining
                if grew || (ended && UInt64(n) < remaining) {
                    spare.withLock { $0.append(buffer) }
                    fail(SourceChanged(path: sourceName, expected: size, grew: grew, actual: offset + UInt64(n)))
                    return
                }
                if n > 0 {
                    buffer.withUnsafeBytes { hasher?.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<n])) }
                    push(.data(buffer, count: n))
                    offset += UInt64(n)
                } else {
                    spare.withLock { $0.append(buffer) }
                }
                if ended {
                    push(.end(hasher.map { Array($0.finalize()) }))
                    return
                }
            } catch {
                spare.withLock { $0.append(buffer) }
                fail(error)
                return
            }
        }
    }

    /// Stops the reader (if still running) and waits until it has returned.
    func cancelAndWait() {
        cancelled.store(true, ordering: .releasing)
        free.signal()
        finished.wait()
    }
}

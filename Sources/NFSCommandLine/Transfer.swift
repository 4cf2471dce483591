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
/// ``Interrupt`` is checked between chunks.
func transfer(from reader: any FileReader, to writer: any FileWriter, size: UInt64, chunkSize: Int,
              sourceName: String, hashing: Bool, progress: ProgressLine) throws -> [UInt8]? {
    // A file smaller than a chunk needs one buffer of its size (plus the byte that checks its end).
    let needed = size < UInt64(chunkSize) ? Int(size) + 1 : chunkSize
    let pipe = Pipe(depth: 3, chunkSize: needed)
    Thread.detachNewThread {
        pipe.produce(from: reader, size: size, sourceName: sourceName, hashing: hashing)
    }
    defer { pipe.cancelAndWait() }
    pipe.consume(writer, progress: progress)
    return try pipe.outcome()
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

import Foundation
import Crypto
import Dispatch
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

/// Copies exactly `size` bytes from `reader` to `writer`, reading the next chunk
/// on a second thread while the current one is written, so neither side waits
/// for the other. Returns the SHA-256 of the bytes when `hashing`.
///
/// A source that ends early or has bytes past `size` ends in ``SourceChanged``
/// rather than a loop; ``Interrupt`` is checked between chunks.
func transfer(from reader: any FileReader, to writer: any FileWriter, size: UInt64, chunkSize: Int,
              sourceName: String, hashing: Bool, progress: ProgressLine) throws -> [UInt8]? {
    let pipe = Pipe(depth: 3, chunkSize: chunkSize)
    Thread.detachNewThread {
        pipe.produce(from: reader, size: size, sourceName: sourceName)
    }
    defer { pipe.cancelAndWait() }
    var hasher = hashing ? SHA256() : nil
    while true {
        switch pipe.next() {
        case .data(let buffer, let count):
            try Interrupt.check()
            try buffer.withUnsafeBytes { bytes in
                let part = UnsafeRawBufferPointer(rebasing: bytes[..<count])
                try writer.write(part)
                hasher?.update(bufferPointer: part)
            }
            progress.add(bytes: count)
            pipe.recycle(buffer)
        case .end:
            return hasher.map { Array($0.finalize()) }
        case .failure(let error):
            throw error
        }
    }
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
        case data([UInt8], Int)
        case end
        case failure(any Error)
    }

    private let filled = DispatchSemaphore(value: 0)
    private let free: DispatchSemaphore
    private let finished = DispatchSemaphore(value: 0)
    private let queue = Mutex<[Item]>([])
    private let spare: Mutex<[[UInt8]]>
    private let cancelled = Atomic<Bool>(false)
    private let chunkSize: Int

    init(depth: Int, chunkSize: Int) {
        self.chunkSize = chunkSize
        // libdispatch traps when a semaphore is freed with a value below the one it was
        // created with (as after an interrupted copy), so count the buffers in by signalling.
        free = DispatchSemaphore(value: 0)
        for _ in 0..<depth { free.signal() }
        spare = Mutex(Array(repeating: [UInt8](repeating: 0, count: chunkSize), count: depth))
    }

    private func push(_ item: Item) {
        queue.withLock { $0.append(item) }
        filled.signal()
    }

    func next() -> Item {
        filled.wait()
        return queue.withLock { $0.removeFirst() }
    }

    func recycle(_ buffer: [UInt8]) {
        spare.withLock { $0.append(buffer) }
        free.signal()
    }

    /// Runs on the reading thread until the source is read, fails, or the writer cancels.
    func produce(from reader: any FileReader, size: UInt64, sourceName: String) {
        defer { finished.signal() }
        var remaining = size
        while true {
            free.wait()
            if cancelled.load(ordering: .acquiring) { return }
            var buffer = spare.withLock { $0.removeLast() }
            do {
                if remaining == 0 {
                    // One more byte tells a grown source from a finished one, without reading on forever.
                    let extra = try buffer.withUnsafeMutableBytes {
                        try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<1]))
                    }
                    push(extra == 0 ? .end
                                    : .failure(SourceChanged(path: sourceName, expected: size, grew: true, actual: size + 1)))
                    return
                }
                let want = Int(min(UInt64(chunkSize), remaining))
                let n = try buffer.withUnsafeMutableBytes {
                    try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<want]))
                }
                if n == 0 {
                    push(.failure(SourceChanged(path: sourceName, expected: size, grew: false, actual: size - remaining)))
                    return
                }
                remaining -= UInt64(n)
                push(.data(buffer, n))
            } catch {
                push(.failure(error))
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

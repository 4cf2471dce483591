import Foundation
import LibNFS
import NFSTestSupport
import SystemPackage
import Testing

/// The async API and the engine under it: many requests in flight on one
/// context's connection, checked against the export directory on local disk.
@Suite("Async API: many requests in flight on one context", TestServer.required)
struct AsyncTests {
    @Test("16 tasks writing, reading, statting and listing through one context leave the right bytes on disk")
    func concurrentOperations() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("async")
        defer { scratch.cleanUp() }
        let nfs = try await NFSContext(url: server.url.description)
        let contents = (0..<16).map { _ in randomBytes(Int.random(in: 1...3_000_000)) }
        let seeded = randomBytes(5_000_000)
        try scratch.writeLocal("seeded", seeded)

        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    let path = scratch.path("w\(task)")
                    try await nfs.withFile(path, mode: "w") { try await $0.write(contents[task]) }
                    #expect(try await nfs.stat(path).size == UInt64(contents[task].count))
                    let offset = UInt64(task * 300_000)
                    let piece = try await nfs.withFile(scratch.path("seeded")) { try await $0.pread(count: 70_000, offset: offset) }
                    #expect(piece == Array(seeded[Int(offset)..<Int(offset) + 70_000]), "task \(task)")
                    #expect(try await nfs.listdir(scratch.path).contains(FilePath.Component("seeded")))
                }
            }
            try await group.waitForAll()
        }
        for task in 0..<16 {
            #expect(try scratch.readLocal("w\(task)") == contents[task], "on disk, task \(task)")
        }
        #expect(try await nfs.withFile(scratch.path("seeded")) { try await $0.readAll() } == seeded)
        try await nfs.close()
        #expect(nfs.isClosed)
    }

    @Test("48 writes of lengths not a multiple of 4, in flight at once, arrive byte for byte and the connection keeps answering")
    func unalignedWritesInFlight() async throws {
        // Writes this large fill the socket's send buffer, so the kernel takes many of them in part;
        // libnfs 5.0.3 resumed those wrongly and lost an unaligned WRITE's XDR padding.
        let server = try TestServer.require()
        let scratch = try server.scratch("async-unaligned")
        defer { scratch.cleanUp() }
        let nfs = try await NFSContext(url: server.url.description, options: NFSOptions(timeout: .seconds(10)))
        let contents = (0..<48).map { randomBytes((600 << 10) + 1 + $0 % 3) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in contents.indices {
                group.addTask {
                    let file = try await nfs.open(scratch.path("u\(task)"), mode: "w")
                    try await file.pwrite(contents[task], offset: 0)
                    try await file.close()
                }
            }
            try await group.waitForAll()
        }
        for task in contents.indices {
            #expect(try scratch.readLocal("u\(task)") == contents[task], "on disk, file u\(task)")
        }
        #expect(try await nfs.stat(scratch.path).isDirectory)
        try await nfs.close()
    }

    @Test("sync calls from a thread go through while async reads are in flight on the same context")
    func syncMixedWithAsync() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("async-mix")
        defer { scratch.cleanUp() }
        let bytes = randomBytes(8 << 20)
        try scratch.writeLocal("f", bytes)
        try scratch.writeLocal("small", [1, 2, 3])
        let nfs = try server.mount()
        defer { try? nfs.close() }
        let syncDone = Locked(0)
        let thread = Thread {
            for _ in 0..<50 {
                guard (try? nfs.stat(scratch.path("small")).size) == 3,
                      (try? nfs.withFile(scratch.path("small")) { try $0.readAll() }) == [1, 2, 3] else { return }
                syncDone.withLock { $0 += 1 }
            }
        }
        thread.start()
        try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<6 { group.addTask { try await nfs.withFile(scratch.path("f")) { try await $0.readAll() } } }
            for try await read in group { #expect(read == bytes) }
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while syncDone.withLock({ $0 }) < 50 && ContinuousClock.now < deadline && !thread.isFinished {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(syncDone.withLock { $0 } == 50)
    }

    @Test("cancelling a task stops its read within a second with CancellationError, and the context stays usable")
    func cancellation() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("async-cancel")
        defer { scratch.cleanUp() }
        let bytes = randomBytes(4 << 20)
        try scratch.writeLocal("f", bytes)

        // A server that stops answering: only cancellation can end the read before the timeout.
        let proxied = try ProxiedServer(server, directory: server.url)
        defer { proxied.shutdown() }
        let stalled = try await NFSContext(url: proxied.url.description, options: NFSOptions(timeout: .seconds(30)))
        let file = try await stalled.open(scratch.path("f"))
        proxied.nfs.stall()
        let reader = Task { try await file.readAll() }
        try await Task.sleep(for: .milliseconds(300))
        let start = ContinuousClock.now
        reader.cancel()
        await #expect(throws: CancellationError.self) { try await reader.value }
        #expect(ContinuousClock.now - start < .seconds(1))

        // On a live server, cancelled requests' replies are dropped and later calls work.
        let nfs = try await NFSContext(url: server.url.description)
        let big = Task { try await nfs.withFile(scratch.path("f")) { file in
            var all: [UInt8] = []
            while case let piece = try await file.read(64 << 10), !piece.isEmpty { all += piece }
            return all
        } }
        try await Task.sleep(for: .milliseconds(5))
        big.cancel()
        switch await big.result {
        case .success(let read): #expect(read == bytes)
        case .failure(let error): #expect(error is CancellationError, "\(error)")
        }
        #expect(try await nfs.withFile(scratch.path("f")) { try await $0.readAll() } == bytes)
        #expect(try await nfs.stat(scratch.path("f")).size == UInt64(bytes.count))
        try await nfs.close()
    }

    @Test("an async mount of a listener that never answers, and an async stat on a stalled server, time out")
    func timeouts() async throws {
        let listener = try SilentListener()
        let url = "nfs://127.0.0.1/export?nfsport=\(listener.port)&mountport=\(listener.port)&version=3"
        let start = ContinuousClock.now
        await #expect { _ = try await NFSContext(url: url, options: NFSOptions(timeout: .seconds(2))) } throws: {
            ($0 as? NFSError)?.isTimeout == true
        }
        #expect(ContinuousClock.now - start < .seconds(9))

        let server = try TestServer.require()
        let proxied = try ProxiedServer(server, directory: server.url)
        defer { proxied.shutdown() }
        let nfs = try await NFSContext(url: proxied.url.description, options: NFSOptions(timeout: .seconds(2)))
        proxied.nfs.stall()
        let statStart = ContinuousClock.now
        await #expect { _ = try await nfs.stat("/") } throws: { ($0 as? NFSError)?.isTimeout == true }
        #expect(ContinuousClock.now - statStart < .seconds(8))
    }

    @Test("a connection cut mid-transfer fails every pending call with a lost-connection error naming its file")
    func cutMidTransfer() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("async-cut")
        defer { scratch.cleanUp() }
        for i in 0..<8 { try scratch.writeLocal("f\(i)", randomBytes(4 << 20)) }
        let proxied = try ProxiedServer(server, directory: server.url, cutAfter: 6 << 20)
        defer { proxied.shutdown() }
        let nfs = try await NFSContext(url: proxied.url.description, options: NFSOptions(timeout: .seconds(5)))
        let results = await withTaskGroup(of: Result<[UInt8], any Error>.self) { group in
            for i in 0..<8 {
                group.addTask {
                    do { return .success(try await nfs.withFile(scratch.path("f\(i)")) { try await $0.readAll() }) } catch {
                        return .failure(error)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let failures = results.compactMap { result -> NFSError? in
            if case .failure(let error) = result { return error as? NFSError }
            return nil
        }
        #expect(!failures.isEmpty)
        for error in failures {
            #expect(error.code == .connectionReset || error.isTimeout, "\(error) [\(error.code.rawValue)]")
            #expect(error.path != nil, "\(error)")
        }
        #expect(nfs.isConnectionLost)
        await #expect(throws: NFSError.self) { _ = try await nfs.stat("/") }
        try? await nfs.close()
    }

    @Test("the concurrent walk lists the same tree as the sync walk, in the same order")
    func concurrentWalk() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("async-walk")
        defer { scratch.cleanUp() }
        for a in 0..<4 {
            for b in 0..<3 {
                try FileManager.default.createDirectory(atPath: scratch.local("d\(a)/e\(b)"), withIntermediateDirectories: true)
                try scratch.writeLocal("d\(a)/e\(b)/file", [UInt8(a), UInt8(b)])
            }
        }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        for topDown in [true, false] {
            let concurrent = try await nfs.walk(scratch.path, topDown: topDown)
            #expect(concurrent == (try Self.syncWalk(nfs, scratch.path, topDown: topDown)))
            #expect(concurrent.count == 1 + 4 + 12)
        }
        try await nfs.removeTree(scratch.path + "/d0")
        #expect(!FileManager.default.fileExists(atPath: scratch.local("d0")))
    }
}

extension AsyncTests {
    /// The blocking walk; a sync function, so the async overload is not chosen.
    static func syncWalk(_ nfs: NFSContext, _ path: String, topDown: Bool) throws -> [NFSWalkEntry] {
        try nfs.walk(path, topDown: topDown)
    }
}

/// A value behind a lock, for the test's thread and tasks.
final class Locked<Value: Sendable>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

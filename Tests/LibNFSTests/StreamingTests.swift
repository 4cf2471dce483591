import Foundation
@testable import LibNFS
import NFSTestSupport
import SystemPackage
import Testing

/// READs sent ahead of a sequential reader, and WRITEs left in flight by a
/// sequential writer (`NFSOptions.writeBehind`): every byte checked on disk.
@Suite("Streamed reads and write-behind", TestServer.required)
struct StreamingTests {
    /// Reads the whole file through `file` in pieces of `piece` bytes.
    static func readAll(_ file: NFSFileHandle, piece: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        while case let bytes = try file.read(piece), !bytes.isEmpty { result += bytes }
        return result
    }

    @Test("a sequential reader gets exactly the bytes on disk to the end, in small and large pieces")
    func sequentialReads() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("stream-read")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        // Not a multiple of readSize, and longer than the read-ahead, so the stream runs and ends mid-READ.
        let bytes = randomBytes(3 * nfs.readAhead + 12_345)
        try scratch.writeLocal("f", bytes)
        for piece in [7919, nfs.readSize, 3 << 20] {
            let read = try nfs.withFile(scratch.path("f")) { try Self.readAll($0, piece: piece) }
            #expect(read == bytes, "pieces of \(piece)")
        }
    }

    @Test("a reader advised of a sequential read, to before, at or past the end, gets exactly the bytes on disk")
    func advisedReads() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("stream-advised")
        defer { scratch.cleanUp() }
        let nfs = try await NFSContext(url: server.url.description, options: NFSOptions(readahead: 8 << 20))
        defer { try? nfs.close() }
        let bytes = randomBytes(5 * nfs.readSize + 777)
        try scratch.writeLocal("f", bytes)
        for end in [UInt64(nfs.readSize), UInt64(bytes.count), UInt64(bytes.count) * 4] {
            let file = try await nfs.open(scratch.path("f"))
            try file.adviseSequentialRead(upTo: end)
            var read: [UInt8] = []
            while case let piece = try await file.read(3 << 20), !piece.isEmpty { read += piece }
            #expect(read == bytes, "advised up to \(end)")
            try await file.close()
            #expect(throws: NFSError.self) { try file.adviseSequentialRead(upTo: end) }
        }
    }

    /// Loopback's mount takes milliseconds, not the 160 ms that would justify 64 MiB
    /// ahead at 2 GB/s; the stream keeps at least four READs out all the same.
    @Test("over loopback's short round trip a stream reads ahead less than a large readahead, at least four READs")
    func streamWindowFollowsRoundTrip() async throws {
        let server = try TestServer.require()
        let nfs = try await NFSContext(url: server.url.description, options: NFSOptions(readahead: 64 << 20))
        defer { try? nfs.close() }
        #expect(nfs.readAhead == 64 << 20)
        #expect(nfs.streamReadAhead < nfs.readAhead && nfs.streamReadAhead >= 4 * nfs.readSize,
                "\(nfs.streamReadAhead) bytes ahead after a mount whose round trip took \(nfs.mountRoundTrip)")
    }

    @Test("an async sequential reader gets exactly the bytes on disk to the end")
    func asyncSequentialReads() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("stream-read-async")
        defer { scratch.cleanUp() }
        let nfs = try await NFSContext(url: server.url.description)
        defer { try? nfs.close() }
        let bytes = randomBytes(3 * nfs.readAhead + 12_345)
        try scratch.writeLocal("f", bytes)
        let file = try await nfs.open(scratch.path("f"))
        var read: [UInt8] = []
        while case let more = try await file.read(100_000), !more.isEmpty { read += more }
        try await file.close()
        #expect(read == bytes, "async")
    }

    /// libnfs 4.x-5.x write into the file handle in every READ's callback, so a close that
    /// freed it while the READs a stream sent past the end were still out corrupted memory
    /// (nfs-cp crashed in about one of five downloads of 16 files of 64 MiB). A close now waits
    /// for them: the engine holds each such close back, and counts it. Whether freed memory
    /// would be hit is chance; that closes were held back is not.
    @Test("closing right after a streamed read reaches the end, again and again in four tasks, reads every byte and corrupts nothing")
    func closeAfterStreamedEnd() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("stream-close")
        defer { scratch.cleanUp() }
        let nfs = try await NFSContext(url: server.url.description)
        defer { try? nfs.close() }
        // Ends mid-READ, past several READs of a stream that has grown deep.
        let bytes = randomBytes(5 * nfs.readSize + 1234)
        try scratch.writeLocal("f", bytes)
        let path = scratch.path("f")
        let heldBefore = Engine.closesHeldBack.load(ordering: .relaxed)
        // Whether a close meets READs still out is up to the scheduler: rounds go on
        // (at most eight) until one has, and every round's bytes are checked.
        for _ in 0..<8 where Engine.closesHeldBack.load(ordering: .relaxed) == heldBefore {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var matched = 0
                        for _ in 0..<30 {
                            let file = try await nfs.open(path)
                            var read: [UInt8] = []
                            // As nfs-cp does: a short read is the end, and the close follows at once.
                            while true {
                                let more = try await file.read(1 << 20)
                                read += more
                                if more.count < 1 << 20 { break }
                            }
                            try await file.close()
                            if read == bytes { matched += 1 }
                        }
                        return matched
                    }
                }
                var matched = 0
                for try await count in group { matched += count }
                #expect(matched == 120)
            }
        }
        #expect(Engine.closesHeldBack.load(ordering: .relaxed) > heldBefore,
                "no close waited for the READs sent past the end")
    }

    /// Counted from outside, at a proxy: READ calls differ only in their offset,
    /// so each costs the same bytes. A read at the end of the file costs one READ
    /// (nothing buffered says where the file ends); reading a small file whole
    /// must cost one where libnfs answers short only at the end, and may cost two
    /// (the short answer, then the empty one) where it does not.
    @Test("reading a small file whole costs one READ where libnfs answers a READ short only at the end of the file")
    func smallFileOneRead() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("one-read")
        defer { scratch.cleanUp() }
        let proxied = try ProxiedServer(server, directory: scratch.url())
        defer { proxied.shutdown() }
        let nfs = try await NFSContext(url: proxied.url.description)
        defer { try? nfs.close() }
        let bytes = randomBytes(4096)
        try scratch.writeLocal("f", bytes)
        let expected = VersionQuirks.shortReadIsEndOfFile(nfs.version) ? 1 : 2
        for round in 0..<2 {
            // Up to three tries a round: the proxy counts every byte on the connection, and
            // a call of the engine's own (an NFSv4 lease renewal) can cross a measurement on
            // a loaded machine. READs counted wrong fail all three.
            var counts: [(whole: Int, oneRead: Int)] = []
            for _ in 0..<3 {
                let file = try await nfs.open("f")
                let start = proxied.nfs.bytesFromClients
                // One byte more than the file holds, as a copy that checks where the source ends asks.
                #expect(try await file.read(bytes.count + 1) == bytes, "round \(round)")
                let whole = proxied.nfs.bytesFromClients - start
                #expect(try await file.read(bytes.count + 1).isEmpty)
                let oneRead = proxied.nfs.bytesFromClients - start - whole
                try await file.close()
                counts.append((whole, oneRead))
                if oneRead > 0 && whole == expected * oneRead { break }
            }
            let last = counts[counts.count - 1]
            #expect(last.oneRead > 0 && last.whole == expected * last.oneRead,
                    "round \(round): reading the file whole sent \(counts.map(\.whole)) bytes, one READ \(counts.map(\.oneRead))")
        }
    }

    @Test("a reader that seeks back, or writes and truncates ahead of itself, reads what is on the server now")
    func streamDroppedByChangesAndSeeks() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("stream-change")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        let size = 12 << 20
        var expected = randomBytes(size)
        try scratch.writeLocal("f", expected)
        let file = try nfs.open(scratch.path("f"), mode: "r+")
        defer { try? file.close() }
        let step = nfs.readSize / 2
        // The second fill continues the first, which starts the stream: READs up to
        // 1.5 × readSize + readahead go out. Given time, they are answered and held.
        for i in 0..<3 { #expect(try file.read(step) == Array(expected[(i * step)..<((i + 1) * step)])) }
        Thread.sleep(forTimeInterval: 0.3)
        // A write through the handle ahead of the position, in the streamed range.
        let patch = randomBytes(1000)
        try file.pwrite(patch, offset: 5 << 20)
        expected.replaceSubrange((5 << 20)..<((5 << 20) + 1000), with: patch)
        #expect(try file.read(6 << 20) == Array(expected[(3 * step)..<(3 * step + (6 << 20))]))
        // Back to the start, then on sequentially again.
        try file.seek(0)
        #expect(try Self.readAll(file, piece: 1 << 20) == expected)
        // A truncate ahead of a streaming reader ends the file there.
        try file.seek(0)
        for _ in 0..<3 { _ = try file.read(step) }
        Thread.sleep(forTimeInterval: 0.3)
        try file.truncate(3 << 20)
        #expect(try Self.readAll(file, piece: 65_536) == Array(expected[(3 * step)..<(3 << 20)]))
        #expect(try scratch.readLocal("f") == Array(expected[..<(3 << 20)]))
    }

    @Test("with write-behind, a sequential writer's bytes all land, and bytes rewritten while in flight land last")
    func writeBehindLandsInOrder() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("write-behind")
        defer { scratch.cleanUp() }
        let nfs = try server.mount(NFSOptions(writeBehind: 8 << 20))
        defer { try? nfs.close() }
        var expected = randomBytes(21 << 20 + 4321)
        let file = try nfs.open(scratch.path("f"), mode: "w")
        var offset = 0
        for piece in [7919, 3 << 20, 1 << 20, 12_345].cycled(until: expected.count) {
            let end = min(offset + piece, expected.count)
            try file.write(expected[offset..<end])
            offset = end
        }
        // Back over bytes whose WRITEs may still be in flight: the newer bytes must win.
        try file.seek(Int64(offset - (2 << 20)))
        let patch = randomBytes(5000)
        try file.write(patch)
        expected.replaceSubrange((offset - (2 << 20))..<(offset - (2 << 20) + 5000), with: patch)
        try file.close()
        #expect(try scratch.readLocal("f") == expected)
    }

    @Test("with write-behind, an async sequential writer's bytes all land")
    func asyncWriteBehind() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("write-behind-async")
        defer { scratch.cleanUp() }
        let nfs = try await NFSContext(url: server.url.description, options: NFSOptions(writeBehind: 8 << 20))
        defer { try? nfs.close() }
        let expected = randomBytes(21 << 20 + 4321)
        let again = try await nfs.open(scratch.path("g"), mode: "w")
        for start in stride(from: 0, to: expected.count, by: 3 << 20) {
            try await again.write(expected[start..<min(start + (3 << 20), expected.count)])
        }
        try await again.close()
        #expect(try scratch.readLocal("g") == expected)
    }

    @Test("with write-behind, a COMMIT goes out every commitInterval bytes answered, none early with 0, and the bytes land whole, sync and async")
    func earlyCommits() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("early-commit")
        defer { scratch.cleanUp() }
        let expected = randomBytes(24 << 20 + 4321)
        for (interval, async) in [(4 << 20, false), (4 << 20, true), (0, false)] {
            let (proxy, url) = try ZeroWriteProxy.inFront(of: server, zeroingWrites: false)
            defer { proxy.shutdown() }
            let nfs = try await NFSContext(url: url.description, options: NFSOptions(writeBehind: 8 << 20, commitInterval: interval))
            defer { try? nfs.close() }
            let name = "f\(interval)-\(async)"
            let pieces = stride(from: 0, to: expected.count, by: 1 << 20).map { expected[$0..<min($0 + (1 << 20), expected.count)] }
            if async {
                let file = try await nfs.open(scratch.path(name), mode: "w")
                for piece in pieces { try await file.write(piece) }
                try await file.close()
            } else {
                try Self.writeBlocking(pieces, to: scratch.path(name), in: nfs)
            }
            #expect(try scratch.readLocal(name) == expected, "\(name)")
            // Over NFSv4 a COMMIT is one operation of a COMPOUND, which the proxy does not read.
            guard nfs.version == .v3 else { continue }
            // 24 MiB at 4 MiB: up to 5 early (fewer when one is still out), then the close's.
            let commits = proxy.calls(21)
            #expect(interval == 0 ? commits == 1 : (2...6).contains(commits), "\(name): \(commits) COMMITs")
        }
    }

    /// The blocking API's writes and close (an async function would pick the async overloads).
    static func writeBlocking(_ pieces: [ArraySlice<UInt8>], to path: String, in nfs: NFSContext) throws {
        let file = try nfs.open(path, mode: "w")
        for piece in pieces { try file.write(piece) }
        try file.close()
    }

    @Test("with write-behind, a WRITE the server refuses after write returned is thrown by the next flush, naming the file")
    func writeBehindReportsLateFailure() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("write-behind-fails")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("f", Array("before".utf8))
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: scratch.local("f"))
        let nfs = try server.mount(NFSOptions(uid: 1000, gid: 1000, writeBehind: 8 << 20))
        defer { try? nfs.close() }
        let file = try nfs.open(scratch.path("f"), mode: "r+")
        // Open while writable by all; then only root may write.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: scratch.local("f"))
        try file.write(randomBytes(4 << 20))   // within the write-behind: returns without an answer
        #expect { try file.flush() } throws: { error in
            guard let error = error as? NFSError else { return false }
            return [.permissionDenied, .ioError].contains(error.code) && error.description.contains(scratch.path("f"))
        }
        try? file.close()
        #expect(try scratch.readLocal("f") == Array("before".utf8))
    }
}

extension Array where Element == Int {
    /// The elements over and over, until their sum reaches `total`.
    func cycled(until total: Int) -> [Int] {
        var result: [Int] = [], sum = 0, i = 0
        while sum < total {
            result.append(self[i % count])
            sum += self[i % count]
            i += 1
        }
        return result
    }
}

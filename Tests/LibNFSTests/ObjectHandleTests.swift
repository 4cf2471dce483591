import Foundation
@_spi(Handles) import LibNFS
import NFSTestSupport
import SystemPackage
import Testing

/// The calls on NFSv3 file handles, checked against the export directory on
/// the server's disk. Over NFSv4 (libnfs has no such layer there) they must
/// refuse clearly instead.
@Suite("Calls on file handles", TestServer.required)
struct ObjectHandleTests {
    /// A context, or nil after checking that an NFSv4 one refuses every call on handles.
    static func v3Context(_ server: TestServer) async throws -> NFSContext? {
        let nfs = try await NFSContext(url: server.url.description)
        guard nfs.supportsObjectHandles else {
            await #expect { _ = try await nfs.handle(of: "/") } throws: { error in
                (error as? NFSError).map { $0.code == .notSupported && $0.description.contains("NFSv3") } == true
            }
            try await nfs.close()
            return nil
        }
        return nfs
    }

    @Test("a file created in a directory's handle, written stably and renamed is on disk byte for byte with its mode")
    func createWriteRename() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("handles-write")
        defer { scratch.cleanUp() }
        guard let nfs = try await Self.v3Context(server) else { return }
        defer { try? nfs.close() }
        let directory = try await nfs.handle(of: FilePath(scratch.path))
        // More than one WRITE's worth, so that the pieces go out together and land in order.
        let bytes = randomBytes(nfs.writeSize * 2 + 12345)
        let file = try await nfs.create("new", in: directory, path: FilePath(scratch.path("new")),
                                        permissions: 0o640, exclusive: true)
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { source.deallocate() }
        source.copyBytes(from: bytes)
        let stable = try await nfs.write(file, path: FilePath(scratch.path("new")), offset: 0,
                                         bytes: UnsafeRawBufferPointer(source), stable: true)
        #expect(stable)
        try await nfs.rename("new", in: directory, to: "final", in: directory, path: FilePath(scratch.path("new")))
        #expect(try scratch.readLocal("final") == bytes)
        #expect(!FileManager.default.fileExists(atPath: scratch.local("new")))
        let mode = try FileManager.default.attributesOfItem(atPath: scratch.local("final"))[.posixPermissions] as? Int
        #expect(mode == 0o640)
        // Set through the handle: the size cuts the file, the mode changes.
        try await nfs.setAttributes(file, path: FilePath(scratch.path("final")), permissions: 0o600, size: 1000)
        #expect(try scratch.readLocal("final") == Array(bytes.prefix(1000)))
        #expect(try FileManager.default.attributesOfItem(atPath: scratch.local("final"))[.posixPermissions] as? Int == 0o600)
    }

    @Test("one SETATTR by handle sets mode, owner and both times to the nanosecond at once, and what it leaves out stays")
    func setAttributesAtOnce() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("handles-setattr")
        defer { scratch.cleanUp() }
        guard let nfs = try await Self.v3Context(server) else { return }
        defer { try? nfs.close() }
        try scratch.writeLocal("f", randomBytes(100))
        let path = FilePath(scratch.path("f"))
        let file = try await nfs.lookup("f", in: try await nfs.handle(of: FilePath(scratch.path)), path: path).handle
        let asRoot = geteuid() == 0
        let before = try LocalStat(scratch.local("f"))
        try await nfs.setAttributes(file, path: path, NFSNewAttributes(
            permissions: 0o604, owner: asRoot ? (1234, 2345) : nil,
            times: (NFSTimestamp(seconds: 1_100_000_000, nanoseconds: 123_456_789),
                    NFSTimestamp(seconds: 1_200_000_000, nanoseconds: 987_654_321))))
        var got = try LocalStat(scratch.local("f"))
        #expect(got.mode & 0o7777 == 0o604)
        #expect(got.accessTime == (1_100_000_000, 123_456_789))
        #expect(got.modificationTime == (1_200_000_000, 987_654_321))
        #expect((got.uid, got.gid) == (asRoot ? (1234, 2345) : (before.uid, before.gid)))
        #expect(got.size == 100)
        // Times alone: the mode and owner just set stay.
        try await nfs.setAttributes(file, path: path, NFSNewAttributes(
            times: (NFSTimestamp(seconds: 5, nanoseconds: 6), NFSTimestamp(seconds: 7, nanoseconds: 8))))
        got = try LocalStat(scratch.local("f"))
        #expect(got.modificationTime == (7, 8) && got.accessTime == (5, 6))
        #expect(got.mode & 0o7777 == 0o604)
        if asRoot { #expect((got.uid, got.gid) == (1234, 2345)) }
    }

    @Test("a file looked up in its directory's handle reads byte for byte, its end reported with the last bytes")
    func lookupRead() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("handles-read")
        defer { scratch.cleanUp() }
        guard let nfs = try await Self.v3Context(server) else { return }
        defer { try? nfs.close() }
        let bytes = randomBytes(nfs.readSize + 777)
        try scratch.writeLocal("f", bytes)
        let directory = try await nfs.handle(of: FilePath(scratch.path))
        let found = try await nfs.lookup("f", in: directory, path: FilePath(scratch.path("f")))
        #expect(found.stat?.size == UInt64(bytes.count) && found.stat?.isFile == true)
        var read: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: nfs.readSize * 2, alignment: 1)
        defer { buffer.deallocate() }
        var ends: [Bool] = []
        for _ in 0..<4 {
            let reply = try await nfs.read(found.handle, path: FilePath(scratch.path("f")), offset: UInt64(read.count), into: buffer)
            read += buffer.prefix(reply.count)
            ends.append(reply.end)
            if reply.end { break }
        }
        #expect(read == bytes)
        // At most readSize per call: two calls, the second one the end.
        #expect(ends == [false, true])
        let sub = try await nfs.lookup(FilePath.Component(scratch.name)!, in: try await nfs.handle(of: "/"),
                                       path: FilePath(scratch.path))
        #expect(sub.stat?.isDirectory == true && sub.handle == directory)
    }

    @Test("calls on handles name the path and the server's reason: missing, existing, and a removed file's stale handle")
    func errors() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("handles-errors")
        defer { scratch.cleanUp() }
        guard let nfs = try await Self.v3Context(server) else { return }
        defer { try? nfs.close() }
        try scratch.writeLocal("here", [1, 2, 3])
        let directory = try await nfs.handle(of: FilePath(scratch.path))
        let missing = FilePath(scratch.path("missing"))
        await #expect { _ = try await nfs.lookup("missing", in: directory, path: missing) } throws: { error in
            guard let error = error as? NFSError else { return false }
            return error.code == .noSuchFileOrDirectory && error.path == missing && error.description.contains("NFS3ERR_NOENT")
        }
        let here = FilePath(scratch.path("here"))
        await #expect { _ = try await nfs.create("here", in: directory, path: here, permissions: 0o644, exclusive: true) } throws: { error in
            (error as? NFSError).map { $0.code == .fileExists && $0.path == here } == true
        }
        #expect(try scratch.readLocal("here") == [1, 2, 3])
        let file = try await nfs.lookup("here", in: directory, path: here).handle
        try FileManager.default.removeItem(atPath: scratch.local("here"))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
        defer { buffer.deallocate() }
        await #expect { _ = try await nfs.read(file, path: here, offset: 0, into: buffer) } throws: { error in
            (error as? NFSError).map { $0.code == .staleNFSFileHandle && $0.path == here } == true
        }
    }

    @Test("a listing by handle, over several replies, gives every name byte for byte with its size and a handle that reads it")
    func listing() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("handles-list")
        defer { scratch.cleanUp() }
        guard let nfs = try await Self.v3Context(server) else { return }
        defer { try? nfs.close() }
        // About 200 bytes an entry: 900 of them do not fit one 64 KiB reply.
        var expected: [[UInt8]: Int] = [:]
        for i in 0..<900 {
            let name = Array("entry-with-a-rather-long-name-to-fill-replies-\(i)".utf8) + (i == 450 ? [0xE9] : [])
            expected[name] = i % 7
            try ByteName.writeLocal(scratch.localPath.appending(ByteName.component(name)), [UInt8](repeating: UInt8(i % 256), count: i % 7))
        }
        try FileManager.default.createDirectory(atPath: scratch.local("sub"), withIntermediateDirectories: false)
        let entries = try await nfs.list(try await nfs.handle(of: FilePath(scratch.path)), path: FilePath(scratch.path))
        let files = entries.filter { $0.name.string != "sub" }
        #expect(Dictionary(files.map { (ByteName.bytes($0.name), Int($0.stat?.size ?? 99)) }, uniquingKeysWith: { a, _ in a }) == expected)
        #expect(files.count == expected.count)
        #expect(entries.first { $0.name.string == "sub" }?.stat?.isDirectory == true)
        let chosen = try #require(files.first { ByteName.bytes($0.name).last == 0xE9 })
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
        defer { buffer.deallocate() }
        let reply = try await nfs.read(try #require(chosen.handle), path: FilePath(scratch.path).appending(chosen.name),
                                       offset: 0, into: buffer)
        #expect(Array(buffer.prefix(reply.count)) == [UInt8](repeating: UInt8(450 % 256), count: 450 % 7) && reply.end)
    }

    @Test("the export's root handle, known from the mount without an RPC, is the one a lookup of the root finds, and lists it")
    func rootHandle() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("handles-root")
        defer { scratch.cleanUp() }
        guard let nfs = try await Self.v3Context(server) else { return }
        defer { try? nfs.close() }
        let root = try nfs.rootHandle
        #expect(root == (try await nfs.handle(of: "/")))
        let names = try await nfs.list(root, path: "/").map(\.name.string)
        #expect(names.contains(try #require(FilePath(scratch.path).components.first?.string)))
    }

    @Test("a file opened by its handle streams, writes behind, appends, truncates and changes mode, all on disk byte for byte")
    func openedByHandle() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("handles-open")
        defer { scratch.cleanUp() }
        guard let nfs = try await Self.v3Context(server) else { return }
        defer { try? nfs.close() }
        let directory = try await nfs.handle(of: FilePath(scratch.path))
        let path = FilePath(scratch.path("f"))
        let bytes = randomBytes(3 * nfs.readSize + 777)
        try scratch.writeLocal("f", bytes)
        let handle = try await nfs.lookup("f", in: directory, path: path).handle

        let reader = try await nfs.open(handle, path: path)
        try reader.adviseSequentialRead(upTo: UInt64(bytes.count))
        #expect(try await reader.readAll() == bytes)
        #expect(try await reader.stat().size == UInt64(bytes.count))
        try await reader.close()

        // Written behind in pieces that straddle WRITEs, then read back from the disk after the close's COMMIT.
        let writer = try await nfs.open(handle, path: path, flags: [.read, .write])
        let replacement = randomBytes(2 * nfs.writeSize + 4321)
        for piece in stride(from: 0, to: replacement.count, by: 100_000) {
            try await writer.write(replacement[piece..<min(piece + 100_000, replacement.count)])
        }
        try await writer.close()
        #expect(try scratch.readLocal("f") == replacement + bytes.dropFirst(replacement.count))

        let appender = try await nfs.open(handle, path: path, flags: [.write, .append])
        try await appender.write([1, 2, 3])
        try await appender.fsync()
        #expect(try scratch.readLocal("f").suffix(3) == [1, 2, 3])
        try await appender.truncate(1000)
        try await appender.chmod(mode: 0o600)
        try await appender.close()
        #expect(try scratch.readLocal("f") == Array(replacement.prefix(1000)))
        #expect(try FileManager.default.attributesOfItem(atPath: scratch.local("f"))[.posixPermissions] as? Int == 0o600)

        await #expect { _ = try await nfs.open(handle, path: path, flags: [.write, .create]) } throws: { error in
            (error as? NFSError).map { $0.code == .invalidArgument && $0.description.contains(scratch.path("f")) } == true
        }
        await #expect { _ = try await appender.write([4]) } throws: { error in
            (error as? NFSError)?.code == .badFileDescriptor
        }
    }

    @Test("a WRITE by handle that the server answers with 0 bytes throws EIO naming the file, direct or from a file opened by handle, without a loop")
    func zeroByteWrite() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("handles-zero")
        defer { scratch.cleanUp() }
        guard server.protocolVersion == 3 else { return }   // the proxy speaks NFSv3 WRITE
        let (proxy, url) = try ZeroWriteProxy.inFront(of: server)
        defer { proxy.shutdown() }
        let nfs = try await NFSContext(url: url.description, options: NFSOptions(timeout: .seconds(5)))
        defer { try? nfs.close() }
        let path = FilePath(scratch.path("f"))
        let file = try await nfs.create("f", in: try await nfs.handle(of: FilePath(scratch.path)), path: path,
                                        permissions: 0o644, exclusive: true)
        let bytes = randomBytes(3000)
        func refused(_ error: any Error) -> Bool {
            (error as? NFSError).map { $0.code == .ioError && $0.description.contains(scratch.path("f")) } == true
        }
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { raw.deallocate() }
        raw.copyBytes(from: bytes)
        await #expect { try await nfs.write(file, path: path, offset: 0, bytes: UnsafeRawBufferPointer(raw), stable: true) } throws: { refused($0) }
        // Opened by handle: the failure shows at close, which sends the buffered bytes.
        let opened = try await nfs.open(file, path: path, flags: .write)
        try await opened.write(bytes)
        await #expect { try await opened.close() } throws: { refused($0) }
        #expect(proxy.rewritten >= 2, "\(proxy.rewritten) WRITE replies went through the proxy")
    }

    @Test("a directory made in its parent's handle is on disk with its mode, takes a file by the handle it answered with, and a second is EEXIST")
    func makeDirectory() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("handles-mkdir")
        defer { scratch.cleanUp() }
        guard let nfs = try await Self.v3Context(server) else { return }
        defer { try? nfs.close() }
        let parent = try await nfs.handle(of: FilePath(scratch.path))
        let path = FilePath(scratch.path("d"))
        let made = try await nfs.makeDirectory("d", in: parent, path: path, permissions: 0o751)
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: scratch.local("d"), isDirectory: &isDirectory) && isDirectory.boolValue)
        #expect(try FileManager.default.attributesOfItem(atPath: scratch.local("d"))[.posixPermissions] as? Int == 0o751)
        let bytes = randomBytes(5000)
        let file = try await nfs.create("f", in: made, path: path.appending("f"), permissions: 0o644, exclusive: true)
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { raw.deallocate() }
        raw.copyBytes(from: bytes)
        try await nfs.write(file, path: path.appending("f"), offset: 0, bytes: UnsafeRawBufferPointer(raw), stable: true)
        #expect(try scratch.readLocal("d/f") == bytes)
        await #expect { _ = try await nfs.makeDirectory("d", in: parent, path: path, permissions: 0o755) } throws: { error in
            (error as? NFSError).map { $0.code == .fileExists && $0.description.contains(scratch.path("d")) } == true
        }
    }

    @Test("a file read by handle into a local descriptor lands byte for byte, and the length found tells a file that ends early or goes on")
    func readIntoDescriptor() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("handles-descriptor")
        defer { scratch.cleanUp() }
        guard let nfs = try await Self.v3Context(server) else { return }
        defer { try? nfs.close() }
        // Several READs' worth and a piece, so that READs are in flight together and one is short.
        let bytes = randomBytes(nfs.readSize * 5 + 4321)
        try scratch.writeLocal("f", bytes)
        let file = try await nfs.handle(of: FilePath(scratch.path("f")))
        let path = FilePath(scratch.path("f"))
        let local = NSTemporaryDirectory() + "handles-descriptor-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: local) }
        for (count, found) in [(UInt64(bytes.count), UInt64(bytes.count)),       // the whole file, which ends there
                               (UInt64(bytes.count - 10), UInt64(bytes.count - 9)), // less: it goes on
                               (UInt64(nfs.readSize * 2), UInt64(nfs.readSize * 2 + 1)), // less, ending on a READ: one byte more is read
                               (UInt64(bytes.count + 100), UInt64(bytes.count))] {   // more: it ends sooner
            let fd = try FileDescriptor.open(FilePath(local), .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
            var reported = 0
            let length: UInt64
            do {
                length = try await nfs.read(file, path: path, count: count, writingTo: fd) { reported += $0 }
                try fd.close()
            } catch {
                try? fd.close()
                throw error
            }
            #expect(length == found, "asked \(count)")
            let written = [UInt8](try Data(contentsOf: URL(fileURLWithPath: local)))
            #expect(written == Array(bytes.prefix(Int(min(count, UInt64(bytes.count))))), "asked \(count)")
            #expect(reported >= written.count, "progress for \(count): \(reported)")
        }
        // A descriptor that cannot be written: the local write's errno, not the server's.
        let readOnly = try FileDescriptor.open(FilePath(scratch.local("f")), .readOnly)
        defer { try? readOnly.close() }
        await #expect(throws: Errno.badFileDescriptor) {
            _ = try await nfs.read(file, path: path, count: UInt64(bytes.count), writingTo: readOnly)
        }
        #expect(try scratch.readLocal("f") == bytes)
    }
}


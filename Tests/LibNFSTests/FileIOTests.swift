import Foundation
import LibNFS
import NFSTestSupport
import SystemPackage
import Testing

@Suite("Reading and writing files", TestServer.required)
struct FileIOTests {
    /// 0, 1, one less, equal and one more than each boundary, and 10 MiB.
    static func sizes(around boundaries: Int...) -> [Int] {
        Set([0, 1, 10 << 20] + boundaries.flatMap { [$0 - 1, $0, $0 + 1] }).sorted()
    }

    @Test("bytes written through the library arrive on disk intact, at every size around the RPC size")
    func writeThenCompareOnDisk() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("write")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        for size in Self.sizes(around: nfs.readSize, nfs.writeSize) {
            let bytes = randomBytes(size)
            try nfs.withFile(scratch.path("f\(size)"), mode: "w") { try $0.write(bytes) }
            #expect(try scratch.readLocal("f\(size)") == bytes, "size \(size)")
        }
    }

    @Test("writes in odd pieces arrive intact at every size around the write buffer's capacity")
    func writeAroundWriteBuffer() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("writebuf")
        defer { scratch.cleanUp() }
        // A buffer that is neither readSize nor writeSize, so its own edges are what is crossed.
        let capacity = 100_003
        let nfs = try server.mount(NFSOptions(writeBufferSize: capacity))
        defer { try? nfs.close() }
        for size in Self.sizes(around: capacity, 2 * capacity) {
            let bytes = randomBytes(size)
            try nfs.withFile(scratch.path("f\(size)"), mode: "w") { file in
                var offset = 0
                while offset < size {
                    let end = min(offset + 7919, size)
                    try file.write(bytes[offset..<end])
                    offset = end
                }
            }
            #expect(try scratch.readLocal("f\(size)") == bytes, "size \(size)")
        }
    }

    @Test("bytes written on disk read back identically through the library, whole and in odd pieces")
    func writeOnDiskThenRead() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("read")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        for size in Self.sizes(around: nfs.readSize) {
            let bytes = randomBytes(size)
            try scratch.writeLocal("f\(size)", bytes)
            #expect(try nfs.withFile(scratch.path("f\(size)")) { try $0.readAll() } == bytes, "size \(size)")
            // Pieces of a prime size cross every buffer boundary at a different place.
            let pieces = try nfs.withFile(scratch.path("f\(size)")) { (file) throws in
                var out: [UInt8] = []
                while true {
                    let chunk = try file.read(4099)
                    if chunk.isEmpty { break }
                    out += chunk
                }
                #expect(try file.read(10).isEmpty, "reads at end of file are empty")
                return out
            }
            #expect(pieces == bytes, "size \(size) in pieces")
        }
    }

    @Test("a read is short only at end of file")
    func shortOnlyAtEnd() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("short")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        let bytes = randomBytes(3 * nfs.readSize + 17)
        try scratch.writeLocal("f", bytes)
        try nfs.withFile(scratch.path("f")) { (file) throws in
            #expect(try file.read(2 * nfs.readSize + 5).count == 2 * nfs.readSize + 5)
            #expect(try file.read(nfs.readSize * 4).count == nfs.readSize - 5 + 17)
            var buffer = [UInt8](repeating: 0, count: 10)
            #expect(try buffer.withUnsafeMutableBytes { try file.read(into: $0) } == 0)
        }
    }

    @Test("100 000 one-byte writes produce the right file")
    func manyTinyWrites() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("tiny")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        let expected = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try nfs.withFile(scratch.path("tiny"), mode: "w") { (file) throws in
            for byte in expected { try file.write([byte]) }
        }
        #expect(try scratch.readLocal("tiny") == expected)
    }

    @Test("seek, tell, r+ overwrites in the middle, and reading what was just written")
    func seekTellOverwrite() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("seek")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        var expected = randomBytes(300_000)
        try scratch.writeLocal("f", expected)
        try nfs.withFile(scratch.path("f"), mode: "r+") { (file) throws in
            #expect(try file.tell() == 0)
            #expect(try file.seek(100_000) == 100_000)
            try file.write([1, 2, 3, 4])
            #expect(try file.tell() == 100_004)
            // Reading back through the same handle sees the buffered write.
            #expect(try file.seek(-4, whence: .current) == 100_000)
            #expect(try file.read(4) == [1, 2, 3, 4])
            #expect(try file.seek(-10, whence: .end) == 299_990)
            #expect(try file.read(100) == Array(expected[299_990...]))
            #expect(try file.pread(count: 4, offset: 100_000) == [1, 2, 3, 4])
            try file.pwrite([9, 9], offset: 5)
            #expect(try file.tell() == 300_000, "pwrite does not move the position")
            #expect { try file.seek(-1) } throws: { ($0 as? NFSError)?.code == .invalidArgument }
        }
        expected.replaceSubrange(100_000..<100_004, with: [1, 2, 3, 4])
        expected.replaceSubrange(5..<7, with: [9, 9])
        #expect(try scratch.readLocal("f") == expected)
    }

    @Test("append mode writes at the end, and w truncates")
    func appendAndTruncateModes() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("append")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        try scratch.writeLocal("f", Array("hello ".utf8))
        try nfs.withFile(scratch.path("f"), mode: "a") { (file) throws in
            #expect(try file.tell() == 6)
            try file.write("world")
        }
        try nfs.withFile(scratch.path("f"), mode: "a+") { (file) throws in
            try file.seek(0)
            try file.write("!")
            #expect(try file.tell() == 12)
            try file.seek(0)
            #expect(try file.readAll() == Array("hello world!".utf8))
        }
        #expect(try scratch.readLocal("f") == Array("hello world!".utf8))
        try nfs.withFile(scratch.path("f"), mode: "w") { try $0.write("new") }
        #expect(try scratch.readLocal("f") == Array("new".utf8))
    }

    @Test("truncate cuts and extends, and stat sees buffered writes")
    func truncateAndStat() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("trunc")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        try nfs.withFile(scratch.path("f"), mode: "w+") { (file) throws in
            try file.write(randomBytes(1000))
            #expect(try file.stat().size == 1000)
            try file.truncate(10)
            #expect(try file.stat().size == 10)
            #expect(try file.tell() == 1000)
            try file.truncate(50)
            try file.seek(10)
            #expect(try file.read(100) == [UInt8](repeating: 0, count: 40))
            // fsync sends what is buffered: the disk has it before the handle closes.
            try file.write([5, 5, 5])
            try file.fsync()
            #expect(try scratch.readLocal("f").suffix(3) == [5, 5, 5])
            #expect(try scratch.readLocal("f").count == 53)
            try file.truncate(50)
        }
        #expect(try scratch.readLocal("f").count == 50)
        try nfs.truncate(scratch.path("f"), to: 3)
        #expect(try scratch.readLocal("f").count == 3)
    }

    @Test("lines and readLine split text, with or without a final newline")
    func readLines() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("lines")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        let long = String(repeating: "x", count: 3 * nfs.readSize)
        try scratch.writeLocal("t", Array("a\r\nbé\n\n\(long)\nlast".utf8))
        #expect(try nfs.withFile(scratch.path("t")) { try $0.lines() } == ["a", "bé", "", long, "last"])
        // With a final newline there is no empty last line.
        try scratch.writeLocal("n", Array("a\nbé\n\(long)\n".utf8))
        #expect(try nfs.withFile(scratch.path("n")) { try $0.lines() } == ["a", "bé", long])
        #expect(try nfs.withFile(scratch.path("n")) { file -> [String?] in
            [try file.readLine(), try file.readLine(), try file.readLine(), try file.readLine()]
        } == ["a", "bé", long, nil])
    }

    @Test("a context-free handle opened by URL reads and writes, and unmounts on close")
    func urlHandle() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("url")
        defer { scratch.cleanUp() }
        // Through a proxy, whose MOUNT port shows from outside that closing sends an unmount.
        let proxied = try ProxiedServer(server, directory: scratch.url())
        defer { proxied.shutdown() }
        var url = proxied.url
        url.path += "/u.txt"
        let file = try NFSFileHandle(url: url.description, mode: "w")
        try file.write("via url")
        let mountBytes = proxied.mount.bytesFromClients
        try file.close()
        if server.protocolVersion == 3 {   // NFSv4 has no MOUNT protocol to tell
            #expect(proxied.mount.bytesFromClients > mountBytes, "close sent nothing to the MOUNT port")
        }
        #expect(file.context.isClosed)
        #expect(try scratch.readLocal("u.txt") == Array("via url".utf8))
        let reader = try NFSFileHandle(url: scratch.url("u.txt").description)
        defer { try? reader.close() }
        #expect(try reader.readAll() == Array("via url".utf8))
    }

    @Test("a handle dropped without close is flushed in the background, and its bytes land before the context closes")
    func deinitFlushes() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("drop")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        do {
            let file = try nfs.open(scratch.path("f"), mode: "w")
            try file.write("buffered")
        }
        try nfs.close()
        #expect(try scratch.readLocal("f") == Array("buffered".utf8))
    }

    @Test("closing the context closes its open handles after flushing them")
    func contextCloseFlushesHandles() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("ctxclose")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        let file = try nfs.open(scratch.path("f"), mode: "w")
        try file.write("pending")
        try nfs.close()
        #expect(file.isClosed)
        #expect(try scratch.readLocal("f") == Array("pending".utf8))
        #expect { try nfs.stat("/") } throws: { ($0 as? NFSError)?.code == .badFileDescriptor }
        try nfs.close()
    }

    @Test("flush sends buffered bytes without closing, and the handle's chmod changes the mode on disk")
    func flushAndChmod() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("flush")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        let file = try nfs.open(scratch.path("f"), mode: "w")
        try file.write("buffered")
        #expect(try scratch.readLocal("f").isEmpty, "a small write waits in the buffer")
        try file.flush()
        #expect(try scratch.readLocal("f") == Array("buffered".utf8))
        try file.chmod(mode: 0o600)
        #expect(try FileManager.default.attributesOfItem(atPath: scratch.local("f"))[.posixPermissions] as? Int == 0o600)
        try file.close()
        #expect { try file.flush() } throws: { ($0 as? NFSError)?.code == .badFileDescriptor }
    }

    @Test("open(flags:) opens as the flags say, and refuses combinations that mean nothing")
    func openWithFlags() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("flags")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        try scratch.writeLocal("existing", Array("0123456789".utf8))
        // read+write without truncate: overwrite in place.
        let rw = try nfs.open(scratch.path("existing"), flags: [.read, .write])
        try rw.write("AB")
        #expect(try rw.read(3) == Array("234".utf8))
        try rw.close()
        #expect(try scratch.readLocal("existing") == Array("AB23456789".utf8))
        // create+exclusive on an existing name fails; on a new one creates with the permissions.
        #expect { _ = try nfs.open(scratch.path("existing"), flags: [.write, .create, .exclusive]) } throws: {
            ($0 as? NFSError)?.code == .fileExists
        }
        let fresh = try nfs.open(scratch.path("new"), flags: [.write, .create, .exclusive], permissions: 0o640)
        try fresh.close()
        #expect(try FileManager.default.attributesOfItem(atPath: scratch.local("new"))[.posixPermissions] as? Int == 0o640)
        // append: writes go to the end, wherever the position is.
        let appender = try nfs.open(scratch.path("existing"), flags: [.write, .append])
        try appender.write("!")
        try appender.close()
        #expect(try scratch.readLocal("existing") == Array("AB23456789!".utf8))
        // A read-only handle refuses writes, naming the mode.
        let reader = try nfs.open(scratch.path("existing"), flags: [.read])
        #expect { try reader.write("x") } throws: { ($0 as? NFSError)?.code == .badFileDescriptor }
        try reader.close()
        // Validation: exclusive needs create, truncate needs write.
        #expect { _ = try nfs.open(scratch.path("x"), flags: [.write, .exclusive]) } throws: { error in
            (error as? NFSError).map { $0.code == .invalidArgument && $0.path == FilePath(scratch.path("x")) } == true
        }
        #expect { _ = try nfs.open(scratch.path("existing"), flags: [.read, .truncate]) } throws: {
            ($0 as? NFSError)?.code == .invalidArgument
        }
        #expect(try scratch.readLocal("existing") == Array("AB23456789!".utf8), "a refused open changes nothing")
        #expect(!FileManager.default.fileExists(atPath: scratch.local("x")))
    }
}

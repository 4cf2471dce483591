import Foundation
import LibNFS
import NFSTestSupport
import SystemPackage
import Testing

@Suite("Mounting a live share", TestServer.required)
struct MountTests {
    @Test("mounts, stats the export root and reads a file written on local disk")
    func mountStatAndRead() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("mount")
        defer { scratch.cleanUp() }
        let bytes = randomBytes(12345)
        try scratch.writeLocal("hello.bin", bytes)

        let nfs = try server.mount()
        defer { try? nfs.close() }
        let root = try nfs.stat("/")
        #expect(root.isDirectory)
        #expect(nfs.readMax > 0 && nfs.readMax <= 1 << 20)
        #expect(nfs.writeMax > 0 && nfs.writeMax <= 1 << 20)

        let read = try nfs.withFile(scratch.path("hello.bin")) { try $0.readAll() }
        #expect(read == bytes)
    }

    @Test("the library names the libnfs it runs against, and it is the one the build was pointed at")
    func libraryVersion() throws {
        let path = try #require(NFSLibrary.path, "no libnfs mapped into the process")
        #expect(path.contains("libnfs"), "\(path)")
        #expect(NFSLibrary.description.hasPrefix("libnfs "))
        guard let expected = TestServer.environment["NFS_TEST_EXPECT_LIBNFS"] else { return }
        #expect(NFSLibrary.release == expected, "loaded \(NFSLibrary.description)")
        let major = Int(expected.prefix { $0 != "." }) ?? 0
        #expect(NFSLibrary.apiVersion == (major >= 6 ? 2 : 1))
        #expect(NFSLibrary.hasReadahead == (major < 6))
    }

    @Test("with read-ahead set, small sequential reads return exactly the bytes on disk, on every libnfs")
    func readahead() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("readahead")
        defer { scratch.cleanUp() }
        let bytes = randomBytes(3 << 20 + 17)
        try scratch.writeLocal("f", bytes)
        let nfs = try server.mount(NFSOptions(readahead: 1 << 20))
        defer { try? nfs.close() }
        var read: [UInt8] = []
        try nfs.withFile(scratch.path("f")) { file in
            while true {
                let piece = try file.read(1000)
                if piece.isEmpty { break }
                read += piece
            }
        }
        #expect(read == bytes)
    }
}

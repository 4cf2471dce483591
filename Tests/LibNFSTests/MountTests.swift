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
}

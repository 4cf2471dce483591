import Foundation
import NFSTestSupport
import Testing

/// A single local file's temporary is created while planning looks the destination up
/// (one round trip less before the first WRITE); what that guessed must not show.
@Suite("nfs-cp with a single file's temporary created beside the destination's lookup", TestServer.required)
struct SingleFileTests {
    @Test("a file copied onto a directory's name goes into it, and the directory's parent keeps no temporary",
          arguments: [5000, 3 << 20 | 7])
    func ontoDirectory(size: Int) throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-single-into-\(size)")
        defer { scratch.cleanUp() }
        try FileManager.default.createDirectory(atPath: scratch.local("in"), withIntermediateDirectories: false)
        let bytes = randomBytes(size)
        try scratch.writeLocal("src", bytes)
        let r = try nfsCp(scratch.local("src"), scratch.url("in").description)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.readLocal("in/src") == bytes)
        #expect(temporaries(in: scratch.local).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.local).sorted() == ["in", "src"])
    }

    @Test("a file replacing one of another mode takes its bytes and keeps the destination's mode",
          arguments: [(5000, 0o600), (5000, 0o444), (3 << 20 | 7, 0o640)])
    func keepsExistingMode(size: Int, mode: Int) throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-single-mode-\(size)-\(mode)")
        defer { scratch.cleanUp() }
        let fm = FileManager.default
        let bytes = randomBytes(size)
        try scratch.writeLocal("src", bytes)
        try fm.setAttributes([.posixPermissions: 0o644], ofItemAtPath: scratch.local("src"))
        try scratch.writeLocal("dst", Array("old".utf8))
        try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: scratch.local("dst"))
        let r = try nfsCp(scratch.local("src"), scratch.url("dst").description)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.readLocal("dst") == bytes)
        #expect(try fm.attributesOfItem(atPath: scratch.local("dst"))[.posixPermissions] as? Int == mode)
        #expect(temporaries(in: scratch.local).isEmpty)
    }

    @Test("a new file gets the source's mode less the umask, small and large", arguments: [5000, 3 << 20 | 7])
    func newFileMode(size: Int) throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-single-new-\(size)")
        defer { scratch.cleanUp() }
        let bytes = randomBytes(size)
        try scratch.writeLocal("src", bytes)
        try FileManager.default.setAttributes([.posixPermissions: 0o750], ofItemAtPath: scratch.local("src"))
        let r = try nfsCp(scratch.local("src"), scratch.url("dst").description)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.readLocal("dst") == bytes)
        let umask = try processUmask()
        #expect(try FileManager.default.attributesOfItem(atPath: scratch.local("dst"))[.posixPermissions] as? Int
                == 0o750 & ~umask)
        #expect(temporaries(in: scratch.local).isEmpty)
    }
}

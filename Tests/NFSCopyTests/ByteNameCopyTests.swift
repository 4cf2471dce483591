import Foundation
import LibNFS
import NFSTestSupport
import SystemPackage
import Testing

/// nfs-cp with names that are not UTF-8, in every direction, checked on the
/// export directory and the local disk with the platform's own calls.
@Suite("nfs-cp copies names byte for byte", TestServer.required)
struct ByteNameCopyTests {
    static let latin1 = Array("caf".utf8) + [0xE9] + Array(".txt".utf8)
    static let names: [[UInt8]] = [latin1, Array("two\nlines".utf8), [UInt8](repeating: 0x6E, count: 254) + [0xFF]]

    /// Fills `directory` with one file per name (contents: its index) and a subdirectory `d\xFF` holding `na\xEFve.txt`.
    static func fill(_ directory: FilePath) throws {
        for (i, name) in names.enumerated() {
            try ByteName.writeLocal(directory.appending(ByteName.component(name)), [UInt8](repeating: UInt8(i), count: 100 + i))
        }
        let sub = directory.appending(ByteName.component([0x64, 0xFF]))
        try ByteName.mkdirLocal(sub)
        try ByteName.writeLocal(sub.appending(ByteName.component(Array("na".utf8) + [0xEF] + Array("ve.txt".utf8))), [42])
    }

    static func expectSameTree(_ a: FilePath, _ b: FilePath, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(ByteName.listLocal(a) == ByteName.listLocal(b), sourceLocation: sourceLocation)
        for name in ByteName.listLocal(a) {
            let (x, y) = (a.appending(ByteName.component(name)), b.appending(ByteName.component(name)))
            if let bytes = ByteName.readLocal(x) {
                #expect(ByteName.readLocal(y) == bytes, "\(x.escapedDescription)", sourceLocation: sourceLocation)
            } else {
                expectSameTree(x, y, sourceLocation: sourceLocation)
            }
        }
    }

    @Test("a tree of such names goes NFS to local and local to NFS complete, and --json counts every file")
    func trees() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-bytes")
        defer { scratch.cleanUp() }
        let source = scratch.localPath.appending("src")
        try ByteName.mkdirLocal(source)
        try Self.fill(source)

        var r = try nfsCp("-r", "--json", scratch.url("src").description, scratch.local("down"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"files\":4") && r.stdout.contains("\"failures\":[]"), "\(r.stdout)")
        Self.expectSameTree(source, scratch.localPath.appending("down"))

        r = try nfsCp("-r", "--json", scratch.local("down"), scratch.url("up").description)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"files\":4"), "\(r.stdout)")
        Self.expectSameTree(source, scratch.localPath.appending("up"))
        #expect(temporaries(in: scratch.local).isEmpty)
    }

    @Test("operands whose bytes are not UTF-8 name exactly those files: raw local paths and %XX in URLs")
    func operands() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-byte-args")
        defer { scratch.cleanUp() }
        try ByteName.writeLocal(scratch.localPath.appending(ByteName.component(Self.latin1)), [1, 2, 3])
        try ByteName.mkdirLocal(scratch.localPath.appending("in"))
        // Through sh and printf, since Foundation's Process passes arguments as Strings.
        let script = #"exec "$0" "$(printf "$1/caf\351.txt")" "$2""#
        var r = try Tool.run(program: "/bin/sh", ["-c", script, Tool.url("nfs-cp").path, scratch.local,
                                                   scratch.url("in").appending("").description])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(ByteName.readLocal(scratch.localPath.appending("in").appending(ByteName.component(Self.latin1))) == [1, 2, 3])

        r = try nfsCp(scratch.url("in/caf%E9.txt").description, scratch.local("back"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(ByteName.readLocal(scratch.localPath.appending("back")) == [1, 2, 3])

        r = try nfsCp(scratch.url("in/missing%E9").description, scratch.local("nothing"))
        #expect(r.status == 1)
        #expect(r.stderr.contains("missing\\xE9: No such file or directory"), "\(r.stderr)")
        #expect(!r.stderr.contains("\u{FFFD}"), "\(r.stderr)")
    }
}

import Foundation
import LibNFS
import NFSTestSupport
import SystemPackage
import Testing

/// nfs-check leaves none of its files behind, and names files byte for byte.
@Suite("nfs-check cleans up and reads any name", TestServer.required)
struct CleanupTests {
    @Test("a deadline during --write-test still removes the test file, on a second connection")
    func deadlineDuringWriteTest() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("chk-deadline")
        defer { scratch.cleanUp() }
        // The read-back of the 256 KiB pattern stalls the connection; a new one still gets through.
        let proxied = try ProxiedServer(server, directory: scratch.url(), stallAfter: 128 << 10)
        defer { proxied.shutdown() }
        let (r, time) = try timed { try nfsCheck([proxied.url.description, "--write-test", "--timeout", "3"]) }
        #expect(r.status == 2, "\(r.stdout)")
        #expect(r.stdout.contains("write-test") && r.stdout.contains("deadline") && r.stdout.contains("its test file was removed"),
                "\(r.stdout)")
        #expect(time < .seconds(3 + 5), "took \(time)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.local).isEmpty)
    }

    @Test("--write-test removes .nfs-check-* files over a day old, and leaves newer ones")
    func staleFiles() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("chk-stale")
        defer { scratch.cleanUp() }
        try scratch.writeLocal(".nfs-check-old", [1])
        try scratch.writeLocal(".nfs-check-new", [2])
        try scratch.writeLocal("other-old", [3])
        let twoDaysAgo = Date(timeIntervalSinceNow: -2 * 86_400)
        for name in [".nfs-check-old", "other-old"] {
            try FileManager.default.setAttributes([.modificationDate: twoDaysAgo], ofItemAtPath: scratch.local(name))
        }
        let r = try nfsCheck([scratch.url().description, "--write-test"])
        #expect(r.status == 0, "\(r.stdout)")
        #expect(r.stdout.contains("1 stale test file over a day old removed"), "\(r.stdout)")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: scratch.local)) == [".nfs-check-new", "other-old"])
    }

    @Test("--read takes a name that is not UTF-8 byte for byte")
    func readByteName() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("chk-bytes")
        defer { scratch.cleanUp() }
        try ByteName.writeLocal(scratch.localPath.appending(ByteName.component(Array("caf".utf8) + [0xE9])), [UInt8](repeating: 5, count: 1000))
        let script = #"exec "$0" "$1" --read "$(printf 'caf\351')" --expect-size 1000"#
        let r = try Tool.run(program: "/bin/sh", ["-c", script, Tool.url("nfs-check").path, scratch.url().description])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("read caf\\xE9"), "\(r.stdout)")
    }
}

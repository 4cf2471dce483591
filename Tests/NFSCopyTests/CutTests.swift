import Foundation
import LibNFS
import NFSTestSupport
import Testing

/// The connection to the server cut for good mid-transfer (a proxy in front of
/// the server closes every connection and its port): every byte and exit code checked.
@Suite("nfs-cp and nfs-check when the connection is cut", TestServer.required)
struct CutTests {
    static let timeout = 3

    @Test("a cut mid-download fails with exit 1 naming the lost connection, leaving the old destination and no temporary")
    func cutDownload() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cut-down")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("src", randomBytes(16 << 20))
        try scratch.writeLocal("dst", Array("previous".utf8))
        let proxied = try ProxiedServer(server, directory: scratch.url(), cutAfter: 4 << 20, autoreconnect: true)
        defer { proxied.shutdown() }
        let (r, time) = try timed {
            try nfsCp("--timeout", "\(Self.timeout)", proxied.url.appending("src").description, scratch.local("dst"))
        }
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("/src") && r.stderr.contains("Lost the connection to the server"), "\(r.stderr)")
        #expect(time < .seconds(Self.timeout + 5), "took \(time): \(r.stderr)")
        #expect(try scratch.readLocal("dst") == Array("previous".utf8))
        #expect(temporaries(in: scratch.local).isEmpty)
    }

    @Test("a cut mid-upload fails with exit 1 naming the lost connection, leaving the old destination as it was")
    func cutUpload() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cut-up")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("src", randomBytes(16 << 20))
        try scratch.writeLocal("dst", Array("previous".utf8))
        let proxied = try ProxiedServer(server, directory: scratch.url(), cutAfter: 4 << 20, autoreconnect: true)
        defer { proxied.shutdown() }
        let (r, time) = try timed {
            try nfsCp("--timeout", "\(Self.timeout)", scratch.local("src"), proxied.url.appending("dst").description)
        }
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("/dst") && r.stderr.contains("Lost the connection to the server"), "\(r.stderr)")
        #expect(time < .seconds(Self.timeout + 5), "took \(time): \(r.stderr)")
        #expect(try scratch.readLocal("dst") == Array("previous".utf8))
        // The server is unreachable, so a temporary there may stay: never under the final name.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.local).allSatisfy {
            ["src", "dst"].contains($0) || ($0.hasPrefix(".nfs-cp-") && $0.hasSuffix(".part"))
        })
    }

    @Test("nfs-check with a cut mid-read reports CRITICAL within its deadline")
    func checkCutRead() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cut-check")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("big", randomBytes(16 << 20))
        let proxied = try ProxiedServer(server, directory: scratch.url(), cutAfter: 4 << 20, autoreconnect: true)
        defer { proxied.shutdown() }
        let (r, time) = try timed {
            try Tool.run("nfs-check", [proxied.url.description, "--read", "big", "--timeout", "5"])
        }
        #expect(r.status == 2, "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("CRITICAL") && r.stdout.contains("read big"), "\(r.stdout)")
        #expect(time < .seconds(5 + 3), "took \(time)")
    }
}

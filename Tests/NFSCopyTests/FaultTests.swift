import Foundation
import LibNFS
import NFSTestSupport
import Testing

/// nfs-cp against servers that are gone, stall, or corrupt data, and its --inplace and --verify promises.
@Suite("nfs-cp against failing servers", TestServer.required)
struct FaultTests {
    @Test("a server that is not there fails the copy at once with exit 1, naming the URL and the refusal")
    func deadServer() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpf-dead")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("src", [1, 2, 3])
        let port = try closedLoopbackPort()
        let url = "nfs://127.0.0.1\(scratch.path)/dst?nfsport=\(port)&mountport=\(port)&version=3"
        let (r, time) = try timed { try nfsCp("--timeout", "5", scratch.local("src"), url) }
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("127.0.0.1") && r.stderr.contains("refused"), "\(r.stderr)")
        #expect(time < .seconds(15), "took \(time)")
        #expect(!FileManager.default.fileExists(atPath: scratch.local("dst")))
    }

    @Test("a server that stalls mid-download fails within --timeout plus a little, leaving nothing locally")
    func stallingServer() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpf-stall")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("src", randomBytes(8 << 20))
        try scratch.writeLocal("dst", Array("previous".utf8))
        let proxied = try ProxiedServer(server, directory: scratch.url(), stallAfter: 2 << 20)
        defer { proxied.shutdown() }
        var source = proxied.url
        source.path += "/src"
        let (r, time) = try timed { try nfsCp("--timeout", "2", source.description, scratch.local("dst")) }
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("/src") && r.stderr.contains("Timed out"), "\(r.stderr)")
        #expect(time < .seconds(20), "took \(time)")
        #expect(try scratch.readLocal("dst") == Array("previous".utf8))
        #expect(temporaries(in: scratch.local).isEmpty)
    }

    @Test("--verify catches bytes corrupted on the way to the server: exit 1, nothing under the final name")
    func verifyMismatch() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpf-verify")
        defer { scratch.cleanUp() }
        let bytes = randomBytes(4 << 20)
        try scratch.writeLocal("src", bytes)
        // 3 MiB into the client's stream is well inside the payload of a 1 MiB WRITE.
        func copy(_ extra: [String], to name: String) throws -> ToolResult {
            let proxied = try ProxiedServer(server, directory: scratch.url(), corruptClientByte: 3 << 20)
            defer { proxied.shutdown() }
            var destination = proxied.url
            destination.path += "/" + name
            return try Tool.run("nfs-cp", extra + [scratch.local("src"), destination.description])
        }
        // Without --verify the corruption goes unseen: this is what --verify is for.
        let unchecked = try copy([], to: "unchecked")
        #expect(unchecked.status == 0, "\(unchecked.stderr)")
        let landed = try scratch.readLocal("unchecked")
        #expect(landed.count == bytes.count && landed != bytes, "the proxy did not corrupt the copy")
        let checked = try copy(["--verify"], to: "checked")
        #expect(checked.status == 1, "\(checked.stderr)")
        #expect(checked.stderr.contains("SHA-256") && checked.stderr.contains("checked"), "\(checked.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch.local("checked")))
        #expect(temporaries(in: scratch.local).isEmpty)
    }

    @Test("--inplace writes into the existing destination (same inode, no temporary) in both directions")
    func inplace() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpf-inplace")
        defer { scratch.cleanUp() }
        let bytes = randomBytes(3 << 20 + 5)
        try scratch.writeLocal("src", bytes)
        try scratch.writeLocal("dst", randomBytes(5 << 20))   // longer: it must be cut to size
        let inode = try FileManager.default.attributesOfItem(atPath: scratch.local("dst"))[.systemFileNumber] as? Int
        let r = try nfsCp("--inplace", scratch.local("src"), scratch.url("dst").description)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.readLocal("dst") == bytes)
        #expect(try FileManager.default.attributesOfItem(atPath: scratch.local("dst"))[.systemFileNumber] as? Int == inode)
        // NFS → local in place.
        try scratch.writeLocal("local-dst", randomBytes(10))
        let localInode = try FileManager.default.attributesOfItem(atPath: scratch.local("local-dst"))[.systemFileNumber] as? Int
        let back = try nfsCp("--inplace", scratch.url("dst").description, scratch.local("local-dst"))
        #expect(back.status == 0, "\(back.stderr)")
        #expect(try scratch.readLocal("local-dst") == bytes)
        #expect(try FileManager.default.attributesOfItem(atPath: scratch.local("local-dst"))[.systemFileNumber] as? Int == localInode)
        #expect(temporaries(in: scratch.local).isEmpty)
    }
}

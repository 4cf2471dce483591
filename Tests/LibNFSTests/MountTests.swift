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
        // Ganesha offers 1 MiB over NFSv3; libnfs 7's v4 client negotiates up to 64 MiB.
        #expect(nfs.readMax > 0 && nfs.readMax <= 64 << 20)
        #expect(nfs.writeMax > 0 && nfs.writeMax <= 64 << 20)
        // What the package sends: the server's sizes, at most 1 MiB.
        #expect(nfs.readSize == min(nfs.readMax, 1 << 20) && nfs.writeSize == min(nfs.writeMax, 1 << 20))

        let read = try nfs.withFile(scratch.path("hello.bin")) { try $0.readAll() }
        #expect(read == bytes)
    }

    @Test("a mount whose every reply takes 1.2 s ends well and reads the file (libnfs 6.x failed a mount's call still waiting at its once-a-second timeout scan)")
    func mountWithSlowReplies() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("slow-mount")
        defer { scratch.cleanUp() }
        let bytes = randomBytes(3000)
        try scratch.writeLocal("f", bytes)
        let proxied = try ProxiedServer(server, directory: scratch.url(), replyDelay: .milliseconds(1200))
        defer { proxied.shutdown() }
        // Far above the delay, so that only the scan's flaw could end the mount early. Async to the
        // close (whose unmount reply is held too), so that it holds no thread of the cooperative
        // pool the other suites run on for its 15 s.
        let nfs = try await NFSContext(url: proxied.url.description, options: .init(timeout: .seconds(60)))
        let read = try await nfs.withFile("f") { try await $0.readAll() }
        try await nfs.close()
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
        #expect(try nfs.withFile(scratch.path("f")) { try $0.readInPieces(of: 1000) } == bytes)
    }

    @Test("NFSv4 mounts on libnfs 7.0.0 and later, and is refused before, naming the version")
    func nfs4Support() throws {
        let server = try TestServer.require()
        var v4 = server.url
        v4.query = v4.query.replacingOccurrences(of: "version=3", with: "version=4")
        if !v4.query.contains("version=4") { v4.query += "&version=4" }
        if let expected = TestServer.environment["NFS_TEST_EXPECT_LIBNFS"] {
            let major = Int(expected.prefix { $0 != "." }) ?? 0
            #expect(NFSLibrary.supportsNFSv4 == (major >= 7))
        }
        if NFSLibrary.supportsNFSv4 {
            let nfs = try NFSContext(url: v4.description)
            defer { try? nfs.close() }
            #expect(try nfs.stat("/").isDirectory)
        } else {
            #expect {
                _ = try NFSContext(url: v4.description)
            } throws: { error in
                guard let error = error as? NFSError else { return false }
                return error.code == .protocolNotSupported && error.description.contains("libnfs 7.0.0")
                    && error.description.contains(NFSLibrary.description)
            }
            // An explicit option is refused the same way.
            #expect { _ = try server.mount(NFSOptions(version: .v4)) } throws: { ($0 as? NFSError)?.code == .protocolNotSupported }
        }
    }

    @Test("an NFSv4 context left idle past the server's lease still opens, writes and reads",
          .enabled(if: NFSLibrary.supportsNFSv4, "this libnfs refuses NFSv4 (see nfs4Support)"))
    func nfs4LeaseOutlivesIdleness() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("lease")
        defer { scratch.cleanUp() }
        var v4 = server.url
        v4.query = v4.query.replacingOccurrences(of: "version=3", with: "version=4")
        let nfs = try await NFSContext(url: v4.description)
        // Longer than the test server's 20 s lease (Scripts/nfs-server), without a call.
        try await Task.sleep(for: .seconds(32))
        let bytes = randomBytes(300_000)
        try await nfs.withFile(scratch.path("after-idle"), mode: "w") { try await $0.write(bytes) }
        #expect(try scratch.readLocal("after-idle") == bytes)
        #expect(try await nfs.withFile(scratch.path("after-idle")) { try await $0.readAll() } == bytes)
        try await nfs.close()
    }

    @Test("an IPv6 address in brackets mounts over ::1, and reads and writes go through it")
    func ipv6() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("v6")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("f", Array("over IPv6".utf8))
        let proxied = try ProxiedServer(server, directory: server.url, ipv6: true)
        defer { proxied.shutdown() }
        #expect(proxied.url.server == "[::1]")
        let nfs = try NFSContext(url: proxied.url.description)
        defer { try? nfs.close() }
        #expect(try nfs.withFile(scratch.path("f")) { try $0.readAll() } == Array("over IPv6".utf8))
        try nfs.withFile(scratch.path("g"), mode: "w") { try $0.write("back") }
        #expect(try scratch.readLocal("g") == Array("back".utf8))
        #expect(proxied.nfs.bytesFromClients > 0, "the calls did not go through the ::1 proxy")
    }
}

import Foundation
import LibNFS
import NFSTestSupport
import SystemPackage
import Testing

/// A mount that crosses no nested exports (`traversesNestedExports: false`, as nfs-cp
/// mounts) returns on libnfs 4.x-5.x once the root handle and the transfer sizes are
/// known, while libnfs's own last two calls of the mount are still out; path calls
/// wait for those. On other versions these tests check the same behaviour of the whole mount.
@Suite("Mounting without nested exports", TestServer.required)
struct EarlyMountTests {
    let options = NFSOptions(timeout: .seconds(5), traversesNestedExports: false)

    /// `url` with its MOUNT port, and `port` as its NFS port.
    func withNFSPort(_ url: NFSURL, _ port: UInt16) -> NFSURL {
        var url = url
        url.query = url.query.split(separator: "&").map { $0.hasPrefix("nfsport=") ? "nfsport=\(port)" : String($0) }
            .joined(separator: "&")
        return url
    }

    @Test("gives the transfer sizes libnfs's own mount finds, and the export's root handle")
    func sizesMatchLibnfsMount() throws {
        let server = try TestServer.require()
        let early = try server.mount(options)
        defer { try? early.close() }
        let whole = try server.mount(NFSOptions(timeout: .seconds(5)))
        defer { try? whole.close() }
        #expect(early.readMax == whole.readMax && early.writeMax == whole.writeMax,
                "\(early.readMax)/\(early.writeMax) against libnfs's \(whole.readMax)/\(whole.writeMax)")
        #expect(try early.stat("/").inode == (try whole.stat("/")).inode)
    }

    @Test("path calls sent the moment a mount over a slow link returns get the bytes and sizes on disk")
    func callsRightAfterTheMount() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("early-mount")
        defer { scratch.cleanUp() }
        let files = (0..<6).map { ("f\($0)", randomBytes(70_000 + $0 * 9_999)) }
        for (name, bytes) in files { try scratch.writeLocal(name, bytes) }
        // Each reply held 150 ms: the mount's last two calls are out for 300 ms after it returns.
        let proxied = try ProxiedServer(server, directory: scratch.url(), replyDelay: .milliseconds(150))
        defer { proxied.shutdown() }
        let nfs = try await NFSContext(url: proxied.url.description, options: options)
        let read = try await withThrowingTaskGroup(of: (String, [UInt8], UInt64).self) { group in
            for (name, _) in files {
                group.addTask {
                    let bytes = try await nfs.withFile(FilePath("/" + name)) { try await $0.readAll() }
                    return (name, bytes, try await nfs.stat(FilePath("/" + name)).size)
                }
            }
            var read: [String: ([UInt8], UInt64)] = [:]
            for try await (name, bytes, size) in group { read[name] = (bytes, size) }
            return read
        }
        try await nfs.close()
        for (name, bytes) in files {
            #expect(read[name]?.0 == (try scratch.readLocal(name)), "\(name)'s bytes")
            #expect(read[name]?.1 == UInt64(bytes.count), "\(name)'s size")
        }
    }

    @Test("a closed MOUNT port fails the mount with connection refused")
    func closedPort() throws {
        let port = try closedLoopbackPort()
        let url = "nfs://127.0.0.1/export?nfsport=\(port)&mountport=\(port)&version=3"
        let (_, time) = timed {
            #expect {
                _ = try NFSContext(url: url, options: options)
            } throws: { error in
                (error as? NFSError).map { $0.code == .connectionRefused && $0.operation == "mount" } ?? false
            }
        }
        #expect(time < .seconds(8), "took \(time)")
    }

    @Test("an NFS port that refuses, after the MNT succeeded, fails the mount naming it")
    func nfsPortRefuses() throws {
        let server = try TestServer.require()
        let url = withNFSPort(server.url, try closedLoopbackPort())
        let (_, time) = timed {
            #expect {
                _ = try NFSContext(url: url.description, options: options)
            } throws: { error in
                (error as? NFSError).map { $0.operation == "mount" && $0.url == url.description } ?? false
            }
        }
        #expect(time < .seconds(8), "took \(time)")
    }

    @Test("an NFS port that never answers, after the MNT succeeded, times the mount out within its timeout")
    func nfsPortSilent() throws {
        let server = try TestServer.require()
        let listener = try SilentListener()
        let url = withNFSPort(server.url, listener.port)
        let (_, time) = timed {
            #expect {
                _ = try NFSContext(url: url.description, options: NFSOptions(timeout: .seconds(2), traversesNestedExports: false))
            } throws: { error in
                (error as? NFSError).map { $0.isTimeout && $0.operation == "mount" } ?? false
            }
        }
        #expect(time < .seconds(9), "took \(time)")
    }
}

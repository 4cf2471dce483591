import Foundation
@_spi(Handles) import LibNFS
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

    // MARK: Returning at the root handle

    /// Whether a mount of `server` with these options is an early one (NFSv3 on libnfs 4.x-5.x).
    func mountsEarly(_ server: TestServer) -> Bool { server.protocolVersion == 3 && NFSLibrary.apiVersion < 2 }

    var returningAtRootHandle: NFSOptions {
        var options = options
        options.returnsAtRootHandle = true
        return options
    }

    @Test("returning at the root handle, the sizes are libnfs's and calls by handle right after get the bytes on disk")
    func rootHandleReturnSizesAndBytes() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("root-handle-return")
        defer { scratch.cleanUp() }
        // Small: the proxy holds each piece of a reply 150 ms, so a large file would take many seconds.
        let bytes = randomBytes(150_000)
        try scratch.writeLocal("f", bytes)
        let proxied = try ProxiedServer(server, directory: scratch.url(), replyDelay: .milliseconds(150))
        defer { proxied.shutdown() }
        let nfs = try await NFSContext(url: proxied.url.description, options: returningAtRootHandle)
        var read: [UInt8] = []
        if server.protocolVersion == 3 {
            // Sent before the sizes are asked for: the LOOKUP goes out beside the mount's FSINFO.
            let found = try await nfs.lookup("f", in: nfs.rootHandle, path: "/f")
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: nfs.readSize, alignment: 1)
            defer { buffer.deallocate() }
            while true {
                let reply = try await nfs.read(found.handle, path: "/f", offset: UInt64(read.count), into: buffer)
                read += buffer[..<reply.count]
                if reply.end || reply.count == 0 { break }
            }
        } else {
            // NFSv4 has no calls on handles (and no early mount).
            read = try await nfs.withFile("/f") { try await $0.readAll() }
        }
        let pathSize = try await nfs.stat("/f").size
        let whole = try server.mount(NFSOptions(timeout: .seconds(5)))
        defer { try? whole.close() }
        #expect(nfs.readMax == whole.readMax && nfs.writeMax == whole.writeMax,
                "\(nfs.readMax)/\(nfs.writeMax) against libnfs's \(whole.readMax)/\(whole.writeMax)")
        try await nfs.close()
        #expect(read == (try scratch.readLocal("f")))
        #expect(pathSize == UInt64(bytes.count))
    }

    @Test("returning at the root handle, an NFS port that never answers fails the first call, and the sizes read 0")
    func rootHandleReturnSilentNFSPort() throws {
        let server = try TestServer.require()
        let listener = try SilentListener()
        let url = withNFSPort(server.url, listener.port)
        var options = returningAtRootHandle
        options.timeout = .seconds(2)
        let (_, time) = try timed {
            guard mountsEarly(server) else {
                // Every other mount waits for the NFS connection, as without the option.
                #expect {
                    _ = try NFSContext(url: url.description, options: options)
                } throws: { error in (error as? NFSError)?.operation == "mount" }
                return
            }
            let nfs = try NFSContext(url: url.description, options: options)
            #expect {
                _ = try nfs.stat("/")
            } throws: { error in
                guard let error = error as? NFSError else { return false }
                return error.isTimeout || error.code == .connectionReset
            }
            #expect(nfs.readMax == 0 && nfs.writeMax == 0)
            #expect(nfs.readSize == 65536, "a server that gave no size")
            try? nfs.close()
        }
        #expect(time < .seconds(12), "took \(time)")
    }

    @Test("returning at the root handle, a context closed before the FSINFO answered gives sizes without waiting for it")
    func rootHandleReturnClosedAtOnce() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("root-handle-close")
        defer { scratch.cleanUp() }
        let proxied = try ProxiedServer(server, directory: scratch.url(), replyDelay: .milliseconds(300))
        defer { proxied.shutdown() }
        var options = returningAtRootHandle
        options.timeout = .seconds(30)
        let (_, time) = try timed {
            let nfs = try NFSContext(url: proxied.url.description, options: options)
            try nfs.close()
            _ = nfs.readMax
            #expect(throws: NFSError.self) { try nfs.stat("/") }
        }
        // The mount's two round trips and its close (about 2.5 s), not the FSINFO's timeout.
        #expect(time < .seconds(15), "took \(time)")
    }
}


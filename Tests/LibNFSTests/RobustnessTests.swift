import Foundation
import LibNFS
import NFSTestSupport
import Testing

/// Inputs from users and servers that must never crash the process, and writes
/// that must never land after they were reported as failed.
@Suite("Robustness against bad input and failed writes")
struct RobustnessTests {
    @Test("timeouts are rounded up to the whole seconds libnfs counts, and huge ones are clamped, not trapped")
    func timeoutRounding() {
        #expect(NFSOptions(timeout: .milliseconds(200)).effectiveTimeout == .seconds(1))
        #expect(NFSOptions(timeout: .milliseconds(2500)).effectiveTimeout == .seconds(3))
        #expect(NFSOptions(timeout: .seconds(30)).effectiveTimeout == .seconds(30))
        #expect(NFSOptions(timeout: nil).effectiveTimeout == nil)
        #expect(NFSOptions(timeout: .seconds(-5)).effectiveTimeout == .seconds(1))
        let limit = Duration.milliseconds(Int64(Int32.max) / 1000 * 1000)
        #expect(NFSOptions(timeout: .seconds(Int64.max)).effectiveTimeout == limit)
        #expect(NFSOptions(timeout: .seconds(Int64(Int32.max))).effectiveTimeout == limit)
    }

    @Test("a timestamp with a nanosecond field of 10⁹ or more, as a server may send, prints without trapping")
    func oversizedNanoseconds() {
        #expect(NFSTimestamp(seconds: 1, nanoseconds: 5).description == "1.000000005")
        #expect(NFSTimestamp(seconds: 1, nanoseconds: 999_999_999).description == "1.999999999")
        #expect(NFSTimestamp(seconds: 1, nanoseconds: .max).description == "1.4294967295")
    }

    @Test("a write that throws leaves none of its bytes buffered for a later close to send", TestServer.required)
    func failedWriteLeavesNothing() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("failed-write")
        defer { scratch.cleanUp() }
        // Owned by root and writable by all: user 1000 may write until the mode changes on disk.
        try scratch.writeLocal("f", [])
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: scratch.local("f"))
        let nfs = try server.mount(NFSOptions(uid: 1000, gid: 1000, writeBufferSize: 1000))
        defer { try? nfs.close() }
        let file = try nfs.open(scratch.path("f"), mode: "r+")
        let first = randomBytes(600), second = randomBytes(600)
        try file.write(first)   // buffered: under the 1000-byte buffer
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: scratch.local("f"))
        // Fills the buffer, whose flush the server refuses: libnfs 6+ say EACCES; 4.x-5.x
        // report NFS3ERR_ACCES on WRITE as EFAULT and lose the reason (an I/O error).
        #expect { try file.write(second) } throws: {
            [.permissionDenied, .ioError].contains(($0 as? NFSError)?.code)
        }
        #expect(try file.tell() == 600, "a failed write must not move the position")
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: scratch.local("f"))
        try file.close()
        // Only the write that succeeded reaches the disk.
        #expect(try scratch.readLocal("f") == first)
    }

    @Test("dropping an open handle does not block the dropping thread on a stalled server", TestServer.required)
    func droppedHandleDoesNotBlock() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("dropped-stall")
        defer { scratch.cleanUp() }
        let proxied = try ProxiedServer(server, directory: server.url)
        defer { proxied.shutdown() }
        let nfs = try NFSContext(url: proxied.url.description, options: NFSOptions(timeout: .seconds(3)))
        var file: NFSFileHandle? = try nfs.open(scratch.path("f"), mode: "w")
        try file?.write(randomBytes(1000))
        proxied.nfs.stall()
        let (_, dropTime) = timed { file = nil }
        #expect(dropTime < .milliseconds(500), "dropping the handle took \(dropTime)")
        // The background flush times out against the stalled server; close() waits for it, then fails the unmount.
        let (_, closeTime) = timed { _ = try? nfs.close() }
        #expect(closeTime < .seconds(15), "close took \(closeTime)")
    }

    @Test("close reports a buffered write the server refused, and the file on disk keeps what it had", TestServer.required)
    func closeReportsFailedFlush() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("close-fails")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("f", Array("before".utf8))
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: scratch.local("f"))
        let nfs = try server.mount(NFSOptions(uid: 1000, gid: 1000))
        defer { try? nfs.close() }
        let file = try nfs.open(scratch.path("f"), mode: "r+")
        try file.write("AFTER!")   // buffered
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: scratch.local("f"))
        #expect(throws: NFSError.self) { try file.close() }
        #expect(file.isClosed, "a failed close still closes")
        #expect(try scratch.readLocal("f") == Array("before".utf8))
    }

    @Test("a connection cut mid-write fails the write, flush and close with an error, never a crash or a hang",
          TestServer.required)
    func cutDuringWrites() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cut-write")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("f", Array("old".utf8))
        let proxied = try ProxiedServer(server, directory: server.url)
        defer { proxied.shutdown() }
        let nfs = try NFSContext(url: proxied.url.description,
                                 options: NFSOptions(timeout: .seconds(3), writeBufferSize: 64 << 10))
        defer { try? nfs.close() }
        let file = try nfs.open(scratch.path("f"), mode: "r+")
        try file.write(randomBytes(1000))
        proxied.shutdown()   // the server's side of every connection closes
        let (_, time) = timed {
            #expect(throws: NFSError.self) { try file.write(randomBytes(4 << 20)) }
            #expect(throws: NFSError.self) { try file.flush() }
            #expect(throws: NFSError.self) { try file.close() }
        }
        #expect(time < .seconds(20), "took \(time)")
        #expect(file.isClosed)
        #expect(throws: NFSError.self) { _ = try nfs.stat(scratch.path("f")) }
    }

    @Test("a server that accepts 0 bytes of a write gets an error naming the file, not a loop or a success",
          TestServer.required)
    func zeroByteWrite() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("zero-write")
        defer { scratch.cleanUp() }
        guard server.protocolVersion == 3 else { return }   // the proxy speaks NFSv3 WRITE
        let (proxy, url) = try ZeroWriteProxy.inFront(of: server)
        defer { proxy.shutdown() }
        let nfs = try NFSContext(url: url.description, options: NFSOptions(timeout: .seconds(5)))
        defer { try? nfs.close() }
        let file = try nfs.open(scratch.path("f"), mode: "w")
        let (_, time) = timed {
            #expect {
                try file.pwrite(randomBytes(1000), offset: 0)
            } throws: { error in
                // libnfs 4.x-5.x catch the zero count themselves (reported as EFAULT, which
                // LibNFS reports as EIO); a libnfs that returns the 0 meets LibNFS's own check.
                guard let error = error as? NFSError else { return false }
                return error.code == .ioError && error.operation == "write"
                    && error.description.contains(scratch.path("f"))
            }
        }
        #expect(time < .seconds(5), "took \(time)")
        #expect(proxy.rewritten >= 1, "no WRITE reply went through the proxy")
        try? file.close()
    }
}

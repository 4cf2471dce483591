import Foundation
import LibNFS
import NFSTestSupport
import SystemPackage
import Testing

/// Runs `body`, requires it to throw an ``NFSError`` with `code`, and checks the message names `path`.
func expectNFSError(_ code: Errno, naming path: String, _ comment: Comment? = nil,
                    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected \(code) for \(path), but nothing was thrown. \(comment?.description ?? "")",
                     sourceLocation: sourceLocation)
    } catch let error as NFSError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        #expect(error.description.contains(path), "\(error) should name \(path)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected NFSError, got \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Errors name the path and the reason", TestServer.required)
struct ErrorTests {
    @Test("missing files, missing parents, wrong types and existing names each throw their errno")
    func namespaceErrors() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("errors")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("file", [1, 2, 3])
        try FileManager.default.createDirectory(atPath: scratch.local("dir/sub"), withIntermediateDirectories: true)
        let nfs = try server.mount()
        defer { try? nfs.close() }

        expectNFSError(.noSuchFileOrDirectory, naming: scratch.path("missing")) { _ = try nfs.open(scratch.path("missing")) }
        expectNFSError(.noSuchFileOrDirectory, naming: scratch.path("missing")) { _ = try nfs.stat(scratch.path("missing")) }
        expectNFSError(.noSuchFileOrDirectory, naming: scratch.path("nope/new")) { _ = try nfs.open(scratch.path("nope/new"), mode: "w") }
        expectNFSError(.noSuchFileOrDirectory, naming: scratch.path("nope/d")) { try nfs.mkdir(scratch.path("nope/d")) }
        expectNFSError(.notDirectory, naming: scratch.path("file/x")) { _ = try nfs.stat(scratch.path("file/x")) }
        expectNFSError(.notDirectory, naming: scratch.path("file")) { _ = try nfs.listdir(scratch.path("file")) }
        expectNFSError(.isDirectory, naming: scratch.path("dir")) { _ = try nfs.open(scratch.path("dir"), mode: "w") }
        expectNFSError(.fileExists, naming: scratch.path("file")) { _ = try nfs.open(scratch.path("file"), mode: "x") }
        expectNFSError(.fileExists, naming: scratch.path("dir")) { try nfs.mkdir(scratch.path("dir")) }
        expectNFSError(.directoryNotEmpty, naming: scratch.path("dir")) { try nfs.rmdir(scratch.path("dir")) }
        expectNFSError(.invalidArgument, naming: scratch.path("file")) { _ = try nfs.open(scratch.path("file"), mode: "rw") }
        expectNFSError(.invalidArgument, naming: scratch.path("file")) { _ = try nfs.readlink(scratch.path("file")) }
        #expect(try scratch.readLocal("file") == [1, 2, 3], "a failed exclusive open must not touch the file")
    }

    @Test("a non-root user is denied a file with mode 000, and access() says so")
    func permissionDenied() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("perm")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("secret", [42])
        try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: scratch.local("secret"))
        let nfs = try server.mount(NFSOptions(uid: 1000, gid: 1000))
        defer { try? nfs.close() }
        expectNFSError(.permissionDenied, naming: scratch.path("secret")) { _ = try nfs.open(scratch.path("secret")) }
        #expect(try nfs.access(scratch.path("secret"), .read) == false)
        #expect(try nfs.access(scratch.path("secret")) == true, "it exists")
    }

    @Test("writing to a read-only handle and reading a write-only one throw EBADF")
    func wrongDirection() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("ro")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("f", [1])
        let nfs = try server.mount()
        defer { try? nfs.close() }
        try nfs.withFile(scratch.path("f")) { (file) throws in
            expectNFSError(.badFileDescriptor, naming: scratch.path("f")) { try file.write([2]) }
            expectNFSError(.badFileDescriptor, naming: scratch.path("f")) { try file.truncate(0) }
        }
        try nfs.withFile(scratch.path("f"), mode: "a") { (file) throws in
            expectNFSError(.badFileDescriptor, naming: scratch.path("f")) { _ = try file.read(1) }
        }
        #expect(try scratch.readLocal("f") == [1])
    }

    @Test("a closed handle throws EBADF on every use, and close is idempotent")
    func useAfterClose() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("closed")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        let file = try nfs.open(scratch.path("f"), mode: "w+")
        try file.close()
        try file.close()
        #expect(file.isClosed)
        expectNFSError(.badFileDescriptor, naming: scratch.path("f")) { _ = try file.read(1) }
        expectNFSError(.badFileDescriptor, naming: scratch.path("f")) { try file.write([1]) }
        expectNFSError(.badFileDescriptor, naming: scratch.path("f")) { _ = try file.seek(0) }
        expectNFSError(.badFileDescriptor, naming: scratch.path("f")) { _ = try file.stat() }
        expectNFSError(.badFileDescriptor, naming: scratch.path("f")) { try file.fsync() }
    }

    @Test("malformed URLs are rejected before any network traffic", arguments: [
        "", "http://127.0.0.1/x", "nfs://", "nfs:///export", "nfs://127.0.0.1", "nfs://127.0.0.1:2049/export",
    ])
    func badURLs(url: String) throws {
        do {
            _ = try NFSContext(url: url, options: NFSOptions(timeout: .seconds(2)))
            Issue.record("\(url) was accepted")
        } catch let error as NFSError {
            #expect(error.code == .invalidArgument)
            #expect(error.description.contains(url.isEmpty ? "\"\"" : url))
        }
    }

    @Test("an error's description reads operation, path, reason and libnfs's text")
    func descriptionFormat() throws {
        let server = try TestServer.require()
        let nfs = try server.mount()
        defer { try? nfs.close() }
        do {
            _ = try nfs.stat("/no/such/file")
            Issue.record("stat of a missing file succeeded")
        } catch let error as NFSError {
            #expect(error.description.hasPrefix("stat /no/such/file: No such file or directory (libnfs: "))
            #expect(!error.isTimeout)
        }
    }
}

import Foundation
import LibNFS
import NFSTestSupport
import SystemPackage
import Testing

@Suite("Failing mounts and unresponsive servers end quickly", TestServer.required)
struct TimeoutTests {
    func elapsed(_ body: () throws -> Void) rethrows -> Duration { try timed(body).1 }

    @Test("a mount of a closed loopback port fails with connection refused")
    func closedPort() throws {
        let port = try closedLoopbackPort()
        let url = "nfs://127.0.0.1/export?nfsport=\(port)&mountport=\(port)&version=3"
        let time = try elapsed {
            do {
                _ = try NFSContext(url: url, options: NFSOptions(timeout: .seconds(5)))
                Issue.record("mounting a closed port succeeded")
            } catch let error as NFSError {
                #expect(error.code == .connectionRefused, "\(error)")
                #expect(error.operation == "mount")
                #expect(error.description.contains("127.0.0.1"))
            }
        }
        #expect(time < .seconds(8), "took \(time)")
    }

    @Test("a mount of a path the server does not export fails with the server's reason")
    func notExported() throws {
        let server = try TestServer.require()
        var url = server.url
        url.path = "/definitely/not/exported"
        do {
            _ = try NFSContext(url: url.description, options: NFSOptions(timeout: .seconds(5)))
            Issue.record("mounting a non-exported path succeeded")
        } catch let error as NFSError {
            #expect([Errno.noSuchFileOrDirectory, .permissionDenied, .notPermitted].contains(error.code), "\(error)")
            #expect(error.description.contains("/definitely/not/exported"))
        }
    }

    @Test("a mount against a listener that never answers times out within the timeout")
    func silentServerMount() throws {
        let listener = try SilentListener()
        let url = "nfs://127.0.0.1/export?nfsport=\(listener.port)&mountport=\(listener.port)&version=3"
        let time = try elapsed {
            do {
                _ = try NFSContext(url: url, options: NFSOptions(timeout: .seconds(2)))
                Issue.record("mounting a silent server succeeded")
            } catch let error as NFSError {
                #expect(error.isTimeout, "\(error)")
                #expect(error.description.contains("Timed out"))
            }
        }
        #expect(time < .seconds(9), "took \(time)")
    }

    @Test("reads and stats on a server that stops answering mid-transfer time out")
    func stallMidTransfer() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("stall")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("f", randomBytes(4 << 20))
        let proxied = try ProxiedServer(server, directory: server.url)
        defer { proxied.shutdown() }
        let nfs = try NFSContext(url: proxied.url.description,
                                 options: NFSOptions(timeout: .seconds(2), readBufferSize: 64 << 10, writeBufferSize: 64 << 10))
        defer { try? nfs.close() }
        let file = try nfs.open(scratch.path("f"))
        #expect(try file.read(1000).count == 1000)
        proxied.nfs.stall()
        let time = elapsed {
            do {
                _ = try file.read(3 << 20)
                Issue.record("a read from a stalled server succeeded")
            } catch let error as NFSError {
                #expect(error.isTimeout, "\(error)")
                #expect(error.description.contains(scratch.path("f")))
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
        #expect(time < .seconds(8), "took \(time)")
        let statTime = elapsed {
            #expect { _ = try nfs.stat(scratch.path("f")) } throws: { isTimeoutOrDroppedConnection($0) }
        }
        #expect(statTime < .seconds(8), "took \(statTime)")
    }

    @Test("a write, a flush and a close on a server that stops answering each time out, naming the file")
    func stallDuringWrites() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("stall-write")
        defer { scratch.cleanUp() }
        let proxied = try ProxiedServer(server, directory: server.url)
        defer { proxied.shutdown() }
        let nfs = try NFSContext(url: proxied.url.description,
                                 options: NFSOptions(timeout: .seconds(2), readBufferSize: 64 << 10, writeBufferSize: 64 << 10))
        defer { try? nfs.close() }
        let file = try nfs.open(scratch.path("f"), mode: "w")
        try file.write(randomBytes(1000))          // buffered
        proxied.nfs.stall()
        func expectTimeout(_ what: String, first: Bool = false, _ body: () throws -> Void) {
            let time = elapsed {
                do {
                    try body()
                    Issue.record("\(what) on a stalled server succeeded")
                } catch let error as NFSError {
                    #expect(first ? error.isTimeout : isTimeoutOrDroppedConnection(error), "\(what): \(error)")
                    #expect(error.description.contains(scratch.path("f")), "\(what): \(error)")
                } catch {
                    Issue.record("\(what): unexpected \(error)")
                }
            }
            #expect(time < .seconds(9), "\(what) took \(time)")
        }
        // A write larger than the buffer must go to the server at once.
        expectTimeout("write", first: true) { try file.write(randomBytes(4 << 20)) }
        expectTimeout("flush") { try file.flush() }
        expectTimeout("close") { try file.close() }
        #expect(file.isClosed)
    }
}

/// The first call on a stalled server times out; libnfs 6 and later then
/// give that connection up (their reconnect on a timeout fails), so the calls
/// after it may instead end at once as a lost connection.
func isTimeoutOrDroppedConnection(_ error: any Error) -> Bool {
    guard let error = error as? NFSError else { return false }
    return error.isTimeout || (NFSLibrary.apiVersion >= 2 && error.code == .connectionReset)
}

import Foundation
import LibNFS
import NFSTestSupport
import Testing

/// nfs-cp as a process among others: what it does to process-wide state, and how it answers signals.
@Suite("nfs-cp as a process", TestServer.required)
struct ProcessTests {
    @Test("nfs-cp reads the umask without ever setting it")
    func umaskUntouched() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("umask")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("src", randomBytes(1000))
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: scratch.local("src"))
        let trace = scratch.local("trace")
        // strace is an independent witness: umask(2) can only be read by setting it,
        // which races with every thread that creates a file meanwhile.
        let r = try Tool.run(program: "/usr/bin/strace",
                             ["-f", "-qq", "-e", "trace=umask", "-o", trace,
                              Tool.url("nfs-cp").path, scratch.local("src"), scratch.url("dst").description])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.readLocal("dst") == scratch.readLocal("src"))
        let calls = try String(contentsOfFile: trace, encoding: .utf8)
        #expect(!calls.contains("umask("), "nfs-cp called umask: \(calls)")
        // The umask still applies: without -p a new file gets the source's mode less the umask.
        let umask = try processUmask()
        let mode = try FileManager.default.attributesOfItem(atPath: scratch.local("dst"))[.posixPermissions] as? Int
        #expect(mode == 0o666 & ~umask, "mode \(String(mode ?? -1, radix: 8)) with umask \(String(umask, radix: 8))")
    }

    @Test("a second SIGINT ends a copy stuck on a stalled server at once, with status 130 and no destination")
    func secondInterrupt() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("sigint2")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("src", randomBytes(8 << 20))
        // The server goes silent after about 1 MiB of replies, so the copy hangs in a read.
        let proxied = try ProxiedServer(server, directory: scratch.url(), stallAfter: 1 << 20)
        defer { proxied.shutdown() }
        var source = proxied.url
        source.path += "/src"
        let copy = try Tool.start("nfs-cp", ["--timeout", "120", source.description, scratch.local("dst")])
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline && copy.process.isRunning && temporaries(in: scratch.local).isEmpty {
            usleep(20_000)
        }
        #expect(!temporaries(in: scratch.local).isEmpty, "the copy never started writing (running: \(copy.process.isRunning))")
        usleep(500_000)
        copy.signal(SIGINT)
        usleep(500_000)
        let start = ContinuousClock.now
        copy.signal(SIGINT)
        let r = try copy.wait(timeout: .seconds(10))
        let took = ContinuousClock.now - start
        #expect(r.status == 130, "\(r.stderr)")
        #expect(took < .seconds(3), "exit took \(took) after the second SIGINT")
        #expect(!FileManager.default.fileExists(atPath: scratch.local("dst")))
    }
}

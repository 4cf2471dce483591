import Foundation
import LibNFS
import NFSTestSupport
import Testing

/// The server crashes (SIGKILL) and restarts on the same ports mid-copy.
///
/// A restart interrupts every other test using the server, so Scripts/test
/// runs this suite alone, with `NFS_TEST_ALLOW_RESTART=1`, and checks that it ran.
@Suite("nfs-cp across a server restart", TestServer.required,
       .enabled(if: ProcessInfo.processInfo.environment["NFS_TEST_ALLOW_RESTART"] == "1",
                "restarts the shared server: run alone (Scripts/test does)"),
       .serialized)
struct RestartTests {
    /// Large enough that a copy on loopback is still running when the restart begins.
    static let size = 512 << 20

    static func restartServer() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Scripts/nfs-server").path
        #expect(try spawnAndWait(script, ["restart"]) == 0)
    }

    /// Waits until a temporary in `directory` has data, then restarts the server while `copy` still runs.
    static func restartMidCopy(_ copy: RunningTool, watching directory: String) throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let sizes = temporaries(in: directory).compactMap {
                (try? FileManager.default.attributesOfItem(atPath: directory + "/" + $0))?[.size] as? Int
            }
            if sizes.contains(where: { $0 > 16 << 20 }) { break }
            usleep(2_000)
        }
        try #require(copy.process.isRunning, "the copy ended before the restart: nothing was tested")
        try restartServer()
    }

    @Test("a restart mid-download: the copy completes and is identical")
    func download() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("restart-down")
        defer { scratch.cleanUp() }
        let bytes = largeDistinctBytes(Self.size)
        try scratch.writeLocal("src", bytes)
        try FileManager.default.createDirectory(atPath: scratch.local("out"), withIntermediateDirectories: false)
        let copy = try Tool.start("nfs-cp", [scratch.url("src").description, scratch.local("out/dst")])
        try Self.restartMidCopy(copy, watching: scratch.local("out"))
        let r = try copy.wait(timeout: .seconds(180))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.readLocal("out/dst") == bytes)
        #expect(temporaries(in: scratch.local).isEmpty)
    }

    @Test("a restart mid-upload: the file is written again when the connection changed, and is identical")
    func upload() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("restart-up")
        defer { scratch.cleanUp() }
        let bytes = largeDistinctBytes(Self.size)
        try FileManager.default.createDirectory(atPath: scratch.local("in"), withIntermediateDirectories: false)
        try scratch.writeLocal("in/src", bytes)
        let copy = try Tool.start("nfs-cp", ["-v", scratch.local("in/src"), scratch.url("dst").description])
        try Self.restartMidCopy(copy, watching: scratch.local)
        let r = try copy.wait(timeout: .seconds(180))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("re-established") && r.stderr.contains("copying it again"), "\(r.stderr)")
        #expect(try scratch.readLocal("dst") == bytes)
        #expect(temporaries(in: scratch.local).isEmpty)
    }
}

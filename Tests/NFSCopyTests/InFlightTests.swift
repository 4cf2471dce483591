import Foundation
import LibNFS
import NFSTestSupport
import Testing

/// Many files in flight at once over one mount per side (`-j`): every byte
/// checked on the export's local disk, one failure among many, and an
/// interrupt while many are being written.
@Suite("nfs-cp with many files in flight", TestServer.required)
struct InFlightTests {
    /// A tree of `count` files of varied sizes (empty, one byte, around the RPC size, a few MiB), in nested directories.
    static func makeTree(at root: String, count: Int, readSize: Int) throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for i in 0..<count {
            let size = switch i % 8 {
            case 0: 0
            case 1: 1
            case 2: readSize - 1
            case 3: readSize + 1
            case 4 where i % 40 == 4: 3 << 20
            default: Int.random(in: 2...200_000)
            }
            let relative = "d\(i % 3)/e\(i % 2)/f\(i)"
            files[relative] = randomBytes(size)
        }
        for (relative, bytes) in files {
            let path = root + "/" + relative
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        return files
    }

    @Test("240 files in flight arrive byte for byte local→NFS, NFS→NFS and NFS→local")
    func manyFilesEveryDirection() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("inflight")
        defer { scratch.cleanUp() }
        let readSize = try server.mount().readSize
        let local = NSTemporaryDirectory() + "nfs-cp-inflight-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: local) }
        let files = try Self.makeTree(at: local + "/src", count: 240, readSize: readSize)

        var r = try nfsCp("-r", "-j", "32", local + "/src", scratch.url("up").description)
        #expect(r.status == 0, "\(r.stderr)")
        r = try nfsCp("-r", "-j", "32", scratch.url("up").description, scratch.url("nn").description)
        #expect(r.status == 0, "\(r.stderr)")
        r = try nfsCp("-r", "-j", "32", scratch.url("nn").description, local + "/down")
        #expect(r.status == 0, "\(r.stderr)")
        var differing: [String] = []
        for (relative, bytes) in files {
            // The export's own disk is the oracle for the NFS side.
            if try scratch.readLocal("up/" + relative) != bytes { differing.append("up/" + relative) }
            if try scratch.readLocal("nn/" + relative) != bytes { differing.append("nn/" + relative) }
            if [UInt8](try Data(contentsOf: URL(fileURLWithPath: local + "/down/" + relative))) != bytes {
                differing.append("down/" + relative)
            }
        }
        #expect(differing.isEmpty, "\(differing.count) files differ: \(differing.prefix(5))")
        #expect(temporaries(in: scratch.local).isEmpty && temporaries(in: local).isEmpty)
    }

    @Test("one file refused among 100 in flight is named, the other 99 complete, exit 1")
    func oneFailureAmongMany() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("inflight-fail")
        defer { scratch.cleanUp() }
        try FileManager.default.createDirectory(atPath: scratch.local("src"), withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o777])
        var files: [String: [UInt8]] = [:]
        for i in 0..<100 { files["f\(i)"] = randomBytes(Int.random(in: 1...150_000)) }
        for (name, bytes) in files { try scratch.writeLocal("src/" + name, bytes) }
        // As uid 1000 the server refuses to read a file with mode 000; it sits in the middle of the order.
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: scratch.local("src/f50"))
        let out = NSTemporaryDirectory() + "nfs-cp-inflight-fail-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try nfsCp("-r", "-j", "16", "--json", "--uid", "1000", "--gid", "1000", scratch.url("src").description, out)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("src/f50") && r.stderr.contains("Permission denied"), "\(r.stderr)")
        let object = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["files"] as? Int == 99 && (object["failures"] as? [Any])?.count == 1, "\(r.stdout)")
        for (name, bytes) in files where name != "f50" {
            #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: out + "/" + name))) == bytes, "\(name)")
        }
        #expect(!FileManager.default.fileExists(atPath: out + "/f50"))
        #expect(temporaries(in: out).isEmpty)
    }

    @Test("SIGINT with many files in flight exits 130, leaves no temporary, and each destination is old or whole")
    func interruptWithManyInFlight() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("inflight-int")
        defer { scratch.cleanUp() }
        let local = NSTemporaryDirectory() + "nfs-cp-inflight-int-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: local) }
        try FileManager.default.createDirectory(atPath: scratch.local("dst"), withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o777])
        var files: [String: [UInt8]] = [:]
        for i in 0..<48 {
            let bytes = largeDistinctBytes(4 << 20)
            files["f\(i)"] = bytes
            try Data(bytes).write(to: URL(fileURLWithPath: local + "/f\(i)"))
            try scratch.writeLocal("dst/f\(i)", Array("old \(i)".utf8))
        }
        let sources = files.keys.sorted().map { local + "/" + $0 }
        let copy = try Tool.start("nfs-cp", ["-j", "16"] + sources + [scratch.url("dst").description])
        let deadline = ContinuousClock.now + .seconds(60)
        while temporaries(in: scratch.local("dst")).isEmpty && copy.process.isRunning && ContinuousClock.now < deadline {
            usleep(1_000)
        }
        try #require(copy.process.isRunning, "the copy ended before it could be interrupted: nothing was tested")
        copy.signal(SIGINT)
        let r = try copy.wait(timeout: .seconds(60))
        #expect(r.status == 130, "\(r.stderr)")
        #expect(temporaries(in: scratch.local("dst")).isEmpty, "\(temporaries(in: scratch.local("dst")))")
        var old = 0
        for (name, bytes) in files {
            let found = try scratch.readLocal("dst/" + name)
            if found == Array("old \(name.dropFirst())".utf8) { old += 1; continue }
            #expect(found == bytes, "\(name): \(found.count) bytes, neither the old file nor the whole new one")
        }
        #expect(old > 0, "every file was copied before the interrupt took effect")
    }
}

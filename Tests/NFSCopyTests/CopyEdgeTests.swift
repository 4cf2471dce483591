import Foundation
import LibNFS
import NFSTestSupport
import Testing

/// A sparse local file of `size` bytes with `markers` written at their offsets.
func makeSparseFile(_ path: String, size: UInt64, markers: [UInt64: [UInt8]] = [:]) throws {
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    try handle.truncate(atOffset: size)
    for (offset, bytes) in markers {
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data(bytes))
    }
    try handle.close()
}

/// A copy that failed because its source `change`d ("grew", "shrank"): exit 1 naming it,
/// nothing at `destination` and no temporary left in `directory`.
func expectSourceChanged(_ r: ToolResult, _ change: String, destination: String, directory: String,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.status == 1, "\(r.stderr)", sourceLocation: sourceLocation)
    #expect(r.stderr.contains("\(change) during the copy"), "\(r.stderr)", sourceLocation: sourceLocation)
    #expect(!FileManager.default.fileExists(atPath: destination), sourceLocation: sourceLocation)
    #expect(temporaries(in: directory).isEmpty, sourceLocation: sourceLocation)
}

/// A new local directory for a test, removed by `cleanUp`.
func makeLocalDirectory(_ name: String) throws -> String {
    let path = NSTemporaryDirectory() + "\(name)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func bytes(of path: String, at offset: UInt64, count: Int) throws -> [UInt8] {
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: offset)
    return [UInt8](try handle.read(upToCount: count) ?? Data())
}

@Suite("nfs-cp edge cases", TestServer.required)
struct CopyEdgeTests {
    @Test("a file over 4 GiB copies to NFS and back, and the library reads past 4 GiB, with 64-bit counts")
    func over4GiB() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpe-4g")
        defer { scratch.cleanUp() }
        let size: UInt64 = (4 << 30) + 4096
        let markers: [UInt64: [UInt8]] = [0: [1, 2, 3], (4 << 30) - 2: [4, 5, 6, 7], size - 3: [8, 9, 10]]
        let source = NSTemporaryDirectory() + "nfs-cp-4g-\(UUID().uuidString)"
        try makeSparseFile(source, size: size, markers: markers)
        defer { try? FileManager.default.removeItem(atPath: source) }
        let r = try Tool.run("nfs-cp", ["--json", source, scratch.url("big").description], timeout: .seconds(300))
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect((summary["bytes"] as? NSNumber)?.uint64Value == size)
        let copy = scratch.local("big")
        #expect((try FileManager.default.attributesOfItem(atPath: copy)[.size] as? NSNumber)?.uint64Value == size)
        for (offset, expected) in markers {
            #expect(try bytes(of: copy, at: offset, count: expected.count) == expected, "at \(offset)")
        }

        // Read back through the library: positions and sizes past 4 GiB.
        let nfs = try server.mount()
        defer { try? nfs.close() }
        try nfs.withFile(scratch.path("big")) { (file) throws in
            #expect(try file.stat().size == size)
            for (offset, expected) in markers {
                #expect(try file.pread(count: expected.count, offset: offset) == expected, "pread at \(offset)")
            }
            #expect(try file.seek(-3, whence: .end) == size - 3)
            #expect(try file.read(10) == [8, 9, 10])
            #expect(try file.read(10).isEmpty)
        }

        // And back to local disk with nfs-cp, NFS → local.
        let back = NSTemporaryDirectory() + "nfs-cp-4g-back-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: back) }
        let b = try Tool.run("nfs-cp", ["--json", scratch.url("big").description, back], timeout: .seconds(300))
        #expect(b.status == 0, "\(b.stderr)")
        let backSummary = try #require(JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as? [String: Any])
        #expect((backSummary["bytes"] as? NSNumber)?.uint64Value == size)
        #expect((try FileManager.default.attributesOfItem(atPath: back)[.size] as? NSNumber)?.uint64Value == size)
        for (offset, expected) in markers {
            #expect(try bytes(of: back, at: offset, count: expected.count) == expected, "back at \(offset)")
        }
    }

    @Test("--progress into a pipe writes plain lines, never control characters")
    func progressIntoPipe() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpe-prog")
        defer { scratch.cleanUp() }
        let source = scratch.local("src")
        try makeSparseFile(source, size: 1 << 30)
        let r = try Tool.run("nfs-cp", ["--progress", source, scratch.url("dst").description], timeout: .seconds(120))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stderr.contains("\u{1B}") && !r.stderr.contains("\r"))
        let lines = r.stderr.split(separator: "\n")
        #expect(!lines.isEmpty, "no progress line at all")
        #expect(lines.allSatisfy { $0.contains(" / 1.0 GiB (") && $0.contains("files ") }, "\(lines)")
        // The last line gives the final figures.
        #expect(lines.last?.hasPrefix("1.0 GiB / 1.0 GiB (100%)") == true, "\(lines.last ?? "")")
        #expect(lines.last?.hasSuffix("files 1/1") == true, "\(lines.last ?? "")")
        // And nothing at all when piped without --progress.
        let quiet = try Tool.run("nfs-cp", [source, scratch.url("dst2").description], timeout: .seconds(120))
        #expect(quiet.status == 0 && quiet.stderr.isEmpty)
    }

    @Test("on a terminal the progress line is redrawn and cleared at the end")
    func progressOnTerminal() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpe-tty")
        defer { scratch.cleanUp() }
        let source = scratch.local("src")
        try makeSparseFile(source, size: 1 << 30)
        // script(1) gives nfs-cp a pseudo-terminal; its output is what a person would see.
        let command = "\(Tool.url("nfs-cp").path) '\(source)' '\(scratch.url("dst").description)'"
        var environment = ProcessInfo.processInfo.environment
        environment["TERM"] = "xterm"
        let r = try Tool.run(program: "/usr/bin/script", ["-q", "-e", "-c", command, "/dev/null"],
                             environment: environment)
        let output = r.stdout
        #expect(r.status == 0, "\(output)")
        #expect(output.contains("\r\u{1B}[2K") && output.contains("1.0 GiB"), "\(output.debugDescription)")
        #expect(output.hasSuffix("\r\u{1B}[2K"), "the line is cleared at the end: \(output.suffix(80).debugDescription)")
    }

    /// A local source's first 64 KiB are read with its open (and it is closed there when
    /// that was all of it): sizes around that boundary must arrive whole, and up to it no more.
    @Test("local files of sizes around the first read's 64 KiB arrive on the server byte for byte")
    func sizesAroundFirstRead() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpe-first-read")
        defer { scratch.cleanUp() }
        let tree = NSTemporaryDirectory() + "nfs-cp-first-read-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: tree) }
        let sizes = [0, 1, 65_535, 65_536, 65_537, 131_072, 200_000]
        var contents: [String: [UInt8]] = [:]
        for size in sizes {
            contents["f\(size)"] = randomBytes(size)
            try Data(contents["f\(size)"]!).write(to: URL(fileURLWithPath: tree + "/f\(size)"))
        }
        let r = try nfsCp("-r", tree, scratch.url("tree").description)
        #expect(r.status == 0, "\(r.stderr)")
        for (name, bytes) in contents {
            #expect(try scratch.readLocal("tree/" + name) == bytes, "\(name)")
        }
    }

    @Test("a source that grows during the copy fails that file and leaves nothing, never loops")
    func growingSource() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpe-grow")
        defer { scratch.cleanUp() }
        let source = NSTemporaryDirectory() + "nfs-cp-grow-\(UUID().uuidString)"
        try makeSparseFile(source, size: 1 << 30, markers: [0: [7]])
        defer { try? FileManager.default.removeItem(atPath: source) }
        // It grows before the copy starts and all through it, so whatever size the copy
        // saw at the start, the file is longer by the time the copy reaches that end.
        let appender = try FileHandle(forWritingTo: URL(fileURLWithPath: source))
        try appender.seekToEnd()
        try appender.write(contentsOf: Data(repeating: 0xAB, count: 64 << 10))
        let copy = try Tool.start("nfs-cp", [source, scratch.url("dst").description])
        let deadline = ContinuousClock.now + .seconds(60)
        while copy.process.isRunning && ContinuousClock.now < deadline {
            try appender.write(contentsOf: Data(repeating: 0xAB, count: 64 << 10))
        }
        try appender.close()
        let r = try copy.wait(timeout: .seconds(60))
        expectSourceChanged(r, "grew", destination: scratch.local("dst"), directory: scratch.local)
    }

    @Test("a source that shrinks during the copy fails that file and leaves nothing")
    func shrinkingSource() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpe-shrink")
        defer { scratch.cleanUp() }
        let source = NSTemporaryDirectory() + "nfs-cp-shrink-\(UUID().uuidString)"
        try makeSparseFile(source, size: 2 << 30, markers: [0: [7]])
        defer { try? FileManager.default.removeItem(atPath: source) }
        let copy = try Tool.start("nfs-cp", [source, scratch.url("dst").description])
        // Shrink it once the copy is under way.
        let deadline = ContinuousClock.now + .seconds(30)
        while copy.process.isRunning && ContinuousClock.now < deadline && temporaries(in: scratch.local).isEmpty {
            usleep(5_000)
        }
        let started = !temporaries(in: scratch.local).isEmpty
        truncate(source, 1 << 20)
        #expect(started, "the copy never started writing")
        // Cut to 1 MiB within milliseconds of the temporary appearing: 2 GiB cannot be copied by then.
        let r = try copy.wait(timeout: .seconds(60))
        expectSourceChanged(r, "shrank", destination: scratch.local("dst"), directory: scratch.local)
    }

    @Test("an NFS source that grows during a download fails that file and leaves nothing, never loops")
    func growingNFSSource() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpe-grow-down")
        defer { scratch.cleanUp() }
        let local = try makeLocalDirectory("nfs-cp-grow-down")
        defer { try? FileManager.default.removeItem(atPath: local) }
        try makeSparseFile(scratch.local("src"), size: 1 << 30, markers: [0: [7]])
        // Appended to on the server's disk before the copy starts and all through it.
        let appender = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch.local("src")))
        try appender.seekToEnd()
        try appender.write(contentsOf: Data(repeating: 0xAB, count: 64 << 10))
        let copy = try Tool.start("nfs-cp", [scratch.url("src").description, local + "/dst"])
        let deadline = ContinuousClock.now + .seconds(60)
        while copy.process.isRunning && ContinuousClock.now < deadline {
            try appender.write(contentsOf: Data(repeating: 0xAB, count: 64 << 10))
        }
        try appender.close()
        let r = try copy.wait(timeout: .seconds(60))
        expectSourceChanged(r, "grew", destination: local + "/dst", directory: local)
    }

    @Test("an NFS source that shrinks during a download fails that file and leaves nothing")
    func shrinkingNFSSource() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpe-shrink-down")
        defer { scratch.cleanUp() }
        let local = try makeLocalDirectory("nfs-cp-shrink-down")
        defer { try? FileManager.default.removeItem(atPath: local) }
        try makeSparseFile(scratch.local("src"), size: 2 << 30, markers: [0: [7]])
        let copy = try Tool.start("nfs-cp", [scratch.url("src").description, local + "/dst"])
        let deadline = ContinuousClock.now + .seconds(30)
        while copy.process.isRunning && ContinuousClock.now < deadline && temporaries(in: local).isEmpty {
            usleep(5_000)
        }
        let started = !temporaries(in: local).isEmpty
        // Cut on the server's disk to 1 MiB within milliseconds of the temporary appearing.
        truncate(scratch.local("src"), 1 << 20)
        #expect(started, "the copy never started writing")
        let r = try copy.wait(timeout: .seconds(60))
        expectSourceChanged(r, "shrank", destination: local + "/dst", directory: local)
    }

    @Test("-r names an unreadable file among others, copies the rest, exits 1, and --json counts add up to what was listed")
    func unreadableAmongMany() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpe-unreadable")
        defer { scratch.cleanUp() }
        try FileManager.default.createDirectory(atPath: scratch.local("src"), withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o777])
        for name in ["a", "b", "c", "locked"] { try scratch.writeLocal("src/" + name, Array(name.utf8)) }
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: scratch.local("src/locked"))
        // As uid 1000 the server refuses to read the file with mode 000.
        let r = try nfsCp("-r", "--json", "--uid", "1000", "--gid", "1000", scratch.url("src").description, scratch.local("out"))
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("src/locked") && r.stderr.contains("Permission denied"), "\(r.stderr)")
        let object = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let failures = object["failures"] as? [[String: Any]] ?? []
        #expect(object["files"] as? Int == 3 && failures.count == 1, "\(r.stdout)")
        #expect((failures.first?["path"] as? String)?.hasSuffix("src/locked") == true, "\(r.stdout)")
        for name in ["a", "b", "c"] { #expect(try scratch.readLocal("out/" + name) == Array(name.utf8)) }
        #expect(!FileManager.default.fileExists(atPath: scratch.local("out/locked")))
        #expect(temporaries(in: scratch.local).isEmpty)
    }

    @Test("a temporary over a day old in the destination directory is removed; a newer one is left alone")
    func staleTemporaries() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpe-stale")
        defer { scratch.cleanUp() }
        try FileManager.default.createDirectory(atPath: scratch.local("out"), withIntermediateDirectories: false)
        try scratch.writeLocal("src", [1, 2, 3])
        try scratch.writeLocal("out/.nfs-cp-0123.part", [9])
        try scratch.writeLocal("out/.nfs-cp-4567.part", [9])
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -2 * 86_400)],
                                              ofItemAtPath: scratch.local("out/.nfs-cp-0123.part"))
        let r = try nfsCp(scratch.local("src"), scratch.url("out/dst").description)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains(".nfs-cp-0123.part") && r.stderr.contains("over a day old"), "\(r.stderr)")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: scratch.local("out"))) == ["dst", ".nfs-cp-4567.part"])
    }

    @Test("a file listed but gone when its turn comes is named, the rest is copied, exit 1, and --json adds up")
    func vanishedAfterListing() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpe-vanish")
        defer { scratch.cleanUp() }
        try FileManager.default.createDirectory(atPath: scratch.local("src"), withIntermediateDirectories: false)
        let big = largeDistinctBytes(256 << 20)
        try scratch.writeLocal("src/a-big", big)
        try scratch.writeLocal("src/z-small", [1])
        try FileManager.default.createDirectory(atPath: scratch.local("out"), withIntermediateDirectories: false)
        // One file at a time, in name order: z-small is removed while a-big is still being copied.
        let copy = try Tool.start("nfs-cp", ["-r", "-j", "1", "--json", scratch.url("src").description, scratch.local("out/src")])
        let deadline = ContinuousClock.now + .seconds(60)
        while temporaries(in: scratch.local("out")).isEmpty && ContinuousClock.now < deadline { usleep(1_000) }
        try #require(copy.process.isRunning, "the copy ended before the file could vanish: nothing was tested")
        try FileManager.default.removeItem(atPath: scratch.local("src/z-small"))
        let r = try copy.wait(timeout: .seconds(120))
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("src/z-small") && r.stderr.contains("No such file or directory"), "\(r.stderr)")
        let object = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let failures = object["failures"] as? [[String: Any]] ?? []
        #expect(object["files"] as? Int == 1 && failures.count == 1, "\(r.stdout)")
        #expect(try scratch.readLocal("out/src/a-big") == big)
        #expect(!FileManager.default.fileExists(atPath: scratch.local("out/src/z-small")))
    }
}

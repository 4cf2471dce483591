import Foundation
import LibNFS
import NFSTestSupport
import Testing

/// Runs nfs-cp and returns its result.
func nfsCp(_ arguments: String...) throws -> ToolResult { try Tool.run("nfs-cp", arguments) }

/// Names of leftover temporary files anywhere below `directory`.
func temporaries(in directory: String) -> [String] {
    (FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? [])
        .filter { ($0 as NSString).lastPathComponent.hasPrefix(".nfs-cp-") }
}

/// This process's umask, read from /proc: setting it to read it would race with
/// every suite creating files meanwhile.
func processUmask() throws -> Int {
    let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
    let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("Umask:") })
    return try #require(Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8))
}

@Suite("nfs-cp copies files", TestServer.required)
struct CopyTests {
    @Test("every direction copies every size around the RPC size and 64 MiB exactly")
    func everyDirectionAndSize() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-dirs")
        defer { scratch.cleanUp() }
        let readSize = try server.mount().readSize
        let local = NSTemporaryDirectory() + "nfs-cp-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: local) }

        for size in [0, 1, readSize - 1, readSize, readSize + 1, 64 << 20] {
            let bytes = randomBytes(size)
            let original = local + "/orig-\(size)"
            try Data(bytes).write(to: URL(fileURLWithPath: original))

            // local → NFS
            var r = try nfsCp(original, scratch.url("up-\(size)").description)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try scratch.readLocal("up-\(size)") == bytes, "local→NFS \(size)")
            // NFS → NFS
            r = try nfsCp(scratch.url("up-\(size)").description, scratch.url("nn-\(size)").description)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try scratch.readLocal("nn-\(size)") == bytes, "NFS→NFS \(size)")
            // NFS → local
            r = try nfsCp(scratch.url("nn-\(size)").description, local + "/down-\(size)")
            #expect(r.status == 0, "\(r.stderr)")
            #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: local + "/down-\(size)"))) == bytes, "NFS→local \(size)")
            // local → local
            r = try nfsCp(original, local + "/ll-\(size)")
            #expect(r.status == 0, "\(r.stderr)")
            #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: local + "/ll-\(size)"))) == bytes, "local→local \(size)")
        }
        #expect(temporaries(in: scratch.local).isEmpty)
        #expect(temporaries(in: local).isEmpty)
    }

    /// nfs-cp crosses no nested exports unless the URL asks, and then goes by path
    /// calls only (a walk by handle would not cross them): both ways must still hold.
    @Test("with the URL asking to cross nested exports, small and large files copy both ways byte for byte")
    func crossingNestedExports() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-traverse")
        defer { scratch.cleanUp() }
        let readSize = try server.mount().readSize
        for (name, size) in [("small", 3000), ("large", 3 * readSize + 17)] {
            let bytes = randomBytes(size)
            try scratch.writeLocal("orig-\(name)", bytes)
            for traverse in ["0", "1"] {
                var up = scratch.url("up-\(name)-\(traverse)")
                up.query += "&auto-traverse-mounts=\(traverse)"
                var r = try nfsCp(scratch.local("orig-\(name)"), up.description)
                #expect(r.status == 0, "\(r.stderr)")
                #expect(try scratch.readLocal("up-\(name)-\(traverse)") == bytes, "up \(name), auto-traverse-mounts=\(traverse)")
                r = try nfsCp(up.description, scratch.local("down-\(name)-\(traverse)"))
                #expect(r.status == 0, "\(r.stderr)")
                #expect(try scratch.readLocal("down-\(name)-\(traverse)") == bytes, "down \(name), auto-traverse-mounts=\(traverse)")
            }
        }
        #expect(temporaries(in: scratch.local).isEmpty)
    }

    @Test("what nfs-cp writes, libnfs-utils' nfs-cat reads back identically")
    func peerReadsOurFiles() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-peer")
        defer { scratch.cleanUp() }
        let bytes = randomBytes(3_000_001)
        let original = scratch.local("orig")
        try Data(bytes).write(to: URL(fileURLWithPath: original))
        let r = try nfsCp(original, scratch.url("copy").description, "--verify")
        #expect(r.status == 0, "\(r.stderr)")
        let cat = try Tool.run(program: "/usr/bin/nfs-cat", [scratch.url("copy").description])
        #expect(cat.status == 0, "\(cat.stderr)")
        #expect([UInt8](cat.output) == bytes)
    }

    @Test("an existing destination is overwritten by default and kept with -n")
    func overwriteAndNoClobber() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-clobber")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("src", Array("new".utf8))
        try scratch.writeLocal("dst", Array("old contents".utf8))
        var r = try nfsCp("-n", scratch.local("src"), scratch.url("dst").description)
        #expect(r.status == 0)
        #expect(try scratch.readLocal("dst") == Array("old contents".utf8))
        r = try nfsCp(scratch.local("src"), scratch.url("dst").description)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.readLocal("dst") == Array("new".utf8))
    }

    /// Planning looks the destination up once, without following a link, and follows
    /// only a link: what it found there must still decide as stat and lstat did.
    @Test("a file copied onto a symlink goes into the directory it names, and replaces a link to a file or to nothing")
    func ontoSymlink() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-onto-link")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("src", Array("copied".utf8))
        try scratch.writeLocal("target", Array("target stays".utf8))
        try FileManager.default.createDirectory(atPath: scratch.local("dir"), withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: scratch.local("to-dir"), withDestinationPath: "dir")
        try FileManager.default.createSymbolicLink(atPath: scratch.local("to-file"), withDestinationPath: "target")
        try FileManager.default.createSymbolicLink(atPath: scratch.local("dangling"), withDestinationPath: "nothing")
        for name in ["to-file", "dangling"] {
            let r = try nfsCp(scratch.local("src"), scratch.url(name).description)
            #expect(r.status == 0, "\(name): \(r.stderr)")
        }
        let intoLink = try nfsCp(scratch.local("src"), scratch.url("to-dir").description)
        if server.protocolVersion == 4 {
            // libnfs's NFSv4 client resolves a RENAME's paths without following links: the
            // temporary is written through the link, but the rename to the final name fails.
            // That is a clear error naming the path, and nothing is left under the final name.
            #expect(intoLink.status == 1, "\(intoLink.stderr)")
            #expect(intoLink.stderr.contains("to-dir") && intoLink.stderr.contains("Not a directory"), "\(intoLink.stderr)")
            #expect(!FileManager.default.fileExists(atPath: scratch.local("dir/src")))
        } else {
            #expect(intoLink.status == 0, "to-dir: \(intoLink.stderr)")
            #expect(try scratch.readLocal("dir/src") == Array("copied".utf8))
        }
        for name in ["to-file", "dangling"] {
            let kind = try FileManager.default.attributesOfItem(atPath: scratch.local(name))[.type] as? FileAttributeType
            #expect(kind == .typeRegular, "\(name) is still a link")
            #expect(try scratch.readLocal(name) == Array("copied".utf8), "\(name)")
        }
        #expect(try scratch.readLocal("target") == Array("target stays".utf8))
        #expect(!FileManager.default.fileExists(atPath: scratch.local("nothing")))
    }

    /// Small files are created and renamed in their directory's handle, found once per
    /// directory: a directory reached through a link must be the one the link names.
    @Test("a tree copied below a link to a directory lands, byte for byte, in the directory the link names")
    func treeBelowLink() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-tree-link")
        defer { scratch.cleanUp() }
        try FileManager.default.createDirectory(atPath: scratch.local("real"), withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o777])
        try FileManager.default.createSymbolicLink(atPath: scratch.local("link"), withDestinationPath: "real")
        let local = NSTemporaryDirectory() + "nfs-cp-tree-link-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: local) }
        var files: [String: [UInt8]] = [:]
        for i in 0..<12 { files["d\(i % 2)/f\(i)"] = randomBytes(i == 5 ? 3 << 20 : 100 * i) }
        for (relative, bytes) in files {
            try FileManager.default.createDirectory(atPath: local + "/src/" + (relative as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: local + "/src/" + relative))
        }
        let r = try nfsCp("-r", local + "/src", scratch.url("link/tree").description)
        // Two files straight into the link: their directory's handle is the link's target's.
        let loose = try nfsCp(local + "/src/d0/f0", local + "/src/d1/f1", scratch.url("link").description)
        #expect(r.status == 0, "\(r.stderr)")
        for (relative, bytes) in files {
            #expect(try scratch.readLocal("real/tree/" + relative) == bytes, "\(relative)")
        }
        if server.protocolVersion == 4 {
            // As for a single file (see ontoSymlink): libnfs's NFSv4 RENAME does not follow a link
            // that is the file's own directory (one further up it does, as the tree shows).
            #expect(loose.status == 1 && loose.stderr.contains("Not a directory"), "\(loose.stderr)")
        } else {
            #expect(loose.status == 0, "\(loose.stderr)")
            #expect(try scratch.readLocal("real/f0") == files["d0/f0"] && scratch.readLocal("real/f1") == files["d1/f1"])
        }
        #expect(temporaries(in: scratch.local).isEmpty)
        let kind = try FileManager.default.attributesOfItem(atPath: scratch.local("link"))[.type] as? FileAttributeType
        #expect(kind == .typeSymbolicLink)
    }

    /// Planning looks a named directory's destination up once: what it found must still
    /// decide where the tree goes, and keep a file from being replaced.
    @Test("a tree copied to a new name is made there, goes into an existing directory, and does not replace a file")
    func treeOntoNames() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-tree-onto")
        defer { scratch.cleanUp() }
        let tree = scratch.local("tree")
        try FileManager.default.createDirectory(atPath: tree + "/sub", withIntermediateDirectories: true)
        let bytes = randomBytes(5000)
        try Data(bytes).write(to: URL(fileURLWithPath: tree + "/sub/x"))
        try scratch.writeLocal("file", Array("file stays".utf8))
        let fresh = try nfsCp("-r", tree, scratch.url("fresh").description)
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(try scratch.readLocal("fresh/sub/x") == bytes)
        let into = try nfsCp("-r", tree, scratch.url("fresh").description)
        #expect(into.status == 0, "\(into.stderr)")
        #expect(try scratch.readLocal("fresh/tree/sub/x") == bytes)
        let ontoFile = try nfsCp("-r", tree, scratch.url("file").description)
        #expect(ontoFile.status == 1, "\(ontoFile.stderr)")
        #expect(ontoFile.stderr.contains("file") && ontoFile.stderr.contains("a directory cannot replace a file"),
                "\(ontoFile.stderr)")
        #expect(try scratch.readLocal("file") == Array("file stays".utf8))
    }

    @Test("several sources go into a directory, and a file source into an existing directory keeps its name")
    func intoDirectory() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-into")
        defer { scratch.cleanUp() }
        try FileManager.default.createDirectory(atPath: scratch.local("in"), withIntermediateDirectories: false)
        try scratch.writeLocal("a", [1]); try scratch.writeLocal("b", [2])
        let r = try nfsCp(scratch.local("a"), scratch.local("b"), scratch.url("in").description)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.readLocal("in/a") == [1] && scratch.readLocal("in/b") == [2])
        let bad = try nfsCp(scratch.local("a"), scratch.local("b"), scratch.url("a").description)
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("is not a directory"))
    }

    @Test("-r copies nested and empty directories and symlinks both ways, and -j 4 copies many files")
    func recursive() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-tree")
        defer { scratch.cleanUp() }
        let fm = FileManager.default
        let tree = scratch.local("tree")
        try fm.createDirectory(atPath: tree + "/a/b/c", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: tree + "/empty", withIntermediateDirectories: true)
        try Data(randomBytes(70_000)).write(to: URL(fileURLWithPath: tree + "/a/b/c/deep.bin"))
        try Data("top".utf8).write(to: URL(fileURLWithPath: tree + "/top.txt"))
        try fm.createSymbolicLink(atPath: tree + "/a/link", withDestinationPath: "b/c/deep.bin")
        for i in 0..<200 { try Data(randomBytes(i * 13)).write(to: URL(fileURLWithPath: tree + "/a/f\(i)")) }

        // local → NFS, 4 workers
        var r = try nfsCp("-r", "-j", "4", tree, scratch.url("up").description)
        #expect(r.status == 0, "\(r.stderr)")
        try expectSameTree(tree, scratch.local("up"))
        // NFS → local
        let down = scratch.local("down")
        r = try nfsCp("-r", scratch.url("up").description, down)
        #expect(r.status == 0, "\(r.stderr)")
        try expectSameTree(tree, down)
        // Without -r a directory is refused with a reason.
        r = try nfsCp(tree, scratch.url("nope").description)
        #expect(r.status == 1)
        #expect(r.stderr.contains("use -r"))
        #expect(temporaries(in: scratch.local).isEmpty)
    }

    func expectSameTree(_ a: String, _ b: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let fm = FileManager.default
        let left = Set(fm.enumerator(atPath: a)?.allObjects as? [String] ?? [])
        let right = Set(fm.enumerator(atPath: b)?.allObjects as? [String] ?? [])
        #expect(left == right, sourceLocation: sourceLocation)
        for item in left {
            let type = try fm.attributesOfItem(atPath: a + "/" + item)[.type] as? FileAttributeType
            let otherType = try? fm.attributesOfItem(atPath: b + "/" + item)[.type] as? FileAttributeType
            #expect(type == otherType, "\(item)", sourceLocation: sourceLocation)
            if type == .typeSymbolicLink {
                #expect(try fm.destinationOfSymbolicLink(atPath: a + "/" + item) == fm.destinationOfSymbolicLink(atPath: b + "/" + item))
            } else if type == .typeRegular {
                #expect(fm.contentsEqual(atPath: a + "/" + item, andPath: b + "/" + item), "\(item)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test("-p keeps the mode and the modification time")
    func preserve() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-p")
        defer { scratch.cleanUp() }
        let fm = FileManager.default
        try scratch.writeLocal("src", randomBytes(1000))
        let mtime = Date(timeIntervalSince1970: 1_234_567_890)
        try fm.setAttributes([.posixPermissions: 0o640, .modificationDate: mtime], ofItemAtPath: scratch.local("src"))
        var r = try nfsCp("-p", scratch.local("src"), scratch.url("kept").description)
        #expect(r.status == 0, "\(r.stderr)")
        let attributes = try fm.attributesOfItem(atPath: scratch.local("kept"))
        #expect(attributes[.posixPermissions] as? Int == 0o640)
        #expect((attributes[.modificationDate] as? Date).map { abs($0.timeIntervalSince(mtime)) < 0.001 } == true)
        // And back from NFS to local.
        r = try nfsCp("-p", scratch.url("kept").description, scratch.local("back"))
        #expect(r.status == 0, "\(r.stderr)")
        let back = try fm.attributesOfItem(atPath: scratch.local("back"))
        #expect(back[.posixPermissions] as? Int == 0o640)
        #expect((back[.modificationDate] as? Date).map { abs($0.timeIntervalSince(mtime)) < 0.001 } == true)
    }

    @Test("-r -p keeps mode, owner and both times to the nanosecond on small and large files and directories, both ways")
    func preserveExactly() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-p-exact")
        defer { scratch.cleanUp() }
        let fm = FileManager.default
        // One file a single WRITE holds, one written behind (over the server's 1 MiB), one a level down.
        try fm.createDirectory(atPath: scratch.local("src/sub"), withIntermediateDirectories: true)
        let files = [("src/small", 1000, 0o640), ("src/large", 3 << 20 | 17, 0o604), ("src/sub/inner", 5, 0o444)]
        for (name, size, mode) in files {
            try scratch.writeLocal(name, randomBytes(size))
            try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: scratch.local(name))
        }
        try fm.setAttributes([.posixPermissions: 0o750], ofItemAtPath: scratch.local("src/sub"))
        // Owners other than the copier's: only root may give them, and nfs-cp keeps them only as root.
        let asRoot = geteuid() == 0
        if asRoot { #expect(chown(scratch.local("src/small"), 1234, 2345) == 0) }
        // Nanoseconds a path call would lose (libnfs's utimes sends microseconds).
        for (i, name) in ["src/small", "src/large", "src/sub/inner", "src/sub", "src"].enumerated() {
            try setLocalTimes(scratch.local(name), access: (1_100_000_000 + Int64(i), 123_456_789),
                              modification: (1_200_000_000 + Int64(i), 987_654_321))
        }
        let wanted = try ["small", "large", "sub/inner", "sub", ""].map { try LocalStat(scratch.local("src/" + $0)) }
        // Over NFSv4 libnfs has no calls on handles: its utimes, to the microsecond, sets them.
        let unit: Int64 = server.url.argument("version") == "4" ? 1000 : 1
        func cut(_ time: (seconds: Int64, nanoseconds: Int64)) -> [Int64] { [time.seconds, time.nanoseconds / unit] }

        func check(_ copy: String) throws {
            for (name, want) in zip(["small", "large", "sub/inner", "sub", ""], wanted) {
                let got = try LocalStat(scratch.local(copy + "/" + name))
                #expect(got.mode & 0o7777 == want.mode & 0o7777, "\(copy)/\(name)")
                #expect(cut(got.modificationTime) == cut(want.modificationTime), "\(copy)/\(name)")
                // A local directory's access time moves with any listing of it: once in six runs here
                // it was the copy's own time (a listing after its times were set; not found), so not asserted.
                if copy == "up" || name == "small" || name == "large" || name == "sub/inner" {
                    #expect(cut(got.accessTime) == cut(want.accessTime), "\(copy)/\(name)")
                }
                if asRoot { #expect((got.uid, got.gid) == (want.uid, want.gid), "\(copy)/\(name)") }
            }
        }
        var r = try nfsCp("-r", "-p", scratch.local("src"), scratch.url("up").description)
        #expect(r.status == 0, "\(r.stderr)")
        // Checked before the copy back, whose reads may move the access times.
        try check("up")
        #expect(try LocalStat(scratch.local("up/small")).uid == (asRoot ? 1234 : geteuid()))
        r = try nfsCp("-r", "-p", scratch.url("up").description, scratch.local("down"))
        #expect(r.status == 0, "\(r.stderr)")
        try check("down")
    }

    @Test("names with spaces and unicode copy in both directions")
    func awkwardNames() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-names")
        defer { scratch.cleanUp() }
        let name = "a file ✓日本.txt"
        try scratch.writeLocal("orig", Array("content".utf8))
        var r = try nfsCp(scratch.local("orig"), scratch.url(name).description)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.readLocal(name) == Array("content".utf8))
        r = try nfsCp(scratch.url(name).description, scratch.local("back " + name))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try scratch.readLocal("back " + name) == Array("content".utf8))
    }

    @Test("--json prints one summary whose counts match what arrived on disk")
    func json() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cp-json")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("a", randomBytes(12_345))
        try FileManager.default.createDirectory(atPath: scratch.local("out"), withIntermediateDirectories: false)
        let r = try nfsCp("--json", scratch.local("a"), scratch.local("missing-source"), scratch.url("out").appending("").description)
        #expect(r.status == 1)
        #expect(try scratch.readLocal("out/a") == scratch.readLocal("a"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.local("out")) == ["a"])
        let object = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["files"] as? Int == 1)
        #expect(object["directories"] as? Int == 0)
        #expect(object["symlinks"] as? Int == 0)
        #expect(object["skipped"] as? Int == 0)
        #expect(object["bytes"] as? Int == 12_345)
        #expect(object["interrupted"] as? Bool == false)
        let seconds = try #require(object["seconds"] as? Double)
        let rate = try #require(object["bytesPerSecond"] as? Double)
        #expect(seconds > 0 && seconds < 60)
        #expect(abs(rate * seconds - 12_345) < 12_345 * 0.01, "rate \(rate) × \(seconds) s is not the bytes copied")
        let failures = try #require(object["failures"] as? [[String: Any]])
        #expect(failures.count == 1)
        #expect((failures.first?["path"] as? String)?.contains("missing-source") == true)
        #expect((failures.first?["reason"] as? String)?.contains("No such file or directory") == true)

        // A tree: every kind is counted.
        try FileManager.default.createDirectory(atPath: scratch.local("tree/sub"), withIntermediateDirectories: true)
        try scratch.writeLocal("tree/x", [1, 2])
        try scratch.writeLocal("tree/sub/y", [3])
        try FileManager.default.createSymbolicLink(atPath: scratch.local("tree/link"), withDestinationPath: "x")
        let t = try nfsCp("--json", "-r", scratch.local("tree"), scratch.url("copy").description)
        #expect(t.status == 0, "\(t.stderr)")
        #expect(try scratch.readLocal("copy/sub/y") == [3])
        let tree = try #require(JSONSerialization.jsonObject(with: Data(t.stdout.utf8)) as? [String: Any])
        #expect(tree["files"] as? Int == 2 && tree["symlinks"] as? Int == 1 && tree["bytes"] as? Int == 3)
        #expect(tree["directories"] as? Int == 2, "the tree's root and sub: \(tree)")
        #expect((tree["failures"] as? [Any])?.isEmpty == true)
    }
}

@Suite("nfs-cp fails clearly and loses nothing", TestServer.required)
struct CopyFailureTests {
    @Test("a missing source names the path and exits 1")
    func missingSource() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpf-missing")
        defer { scratch.cleanUp() }
        let url = scratch.url("nope").description
        let r = try nfsCp(url, scratch.local("x"))
        #expect(r.status == 1)
        #expect(r.stderr.contains("nfs-cp: cannot stat nfs://"))
        #expect(r.stderr.contains("/nope: No such file or directory"))
        #expect(!FileManager.default.fileExists(atPath: scratch.local("x")))
    }

    @Test("a missing destination directory names the path and exits 1, leaving nothing")
    func missingDestinationDirectory() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpf-nodir")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("src", [1, 2, 3])
        let r = try nfsCp(scratch.local("src"), scratch.url("no/such/dir/file").description)
        #expect(r.status == 1)
        #expect(r.stderr.contains("No such file or directory"), "\(r.stderr)")
        #expect(r.stderr.contains("no/such/dir"), "\(r.stderr)")
        #expect(temporaries(in: scratch.local).isEmpty)
    }

    @Test("an unwritable destination is refused with the reason, and the existing file is untouched")
    func unwritableDestination() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpf-ro")
        defer { scratch.cleanUp() }
        let fm = FileManager.default
        try fm.createDirectory(atPath: scratch.local("locked"), withIntermediateDirectories: false)
        try scratch.writeLocal("locked/existing", Array("keep me".utf8))
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: scratch.local("locked"))
        try scratch.writeLocal("src", [9, 9, 9])
        let r = try nfsCp("--uid", "1000", "--gid", "1000", scratch.local("src"), scratch.url("locked/existing").description)
        #expect(r.status == 1)
        #expect(r.stderr.contains("Permission denied"), "\(r.stderr)")
        #expect(try scratch.readLocal("locked/existing") == Array("keep me".utf8))
        #expect(temporaries(in: scratch.local).isEmpty)
    }

    @Test("bad usage exits 2 with a message")
    func usage() throws {
        var r = try nfsCp("only-one-operand")
        #expect(r.status == 2)
        #expect(r.stderr.contains("nfs-cp:"))
        r = try nfsCp("--jobs", "0", "a", "b")
        #expect(r.status == 2)
        r = try nfsCp("http://example.invalid/x", "b")
        #expect(r.status == 2)
        // Values that once trapped in a conversion are refused as usage errors.
        for timeout in ["1e16", "86401", "nan", "inf", "-1", "0"] {
            r = try nfsCp("--timeout", timeout, "a", "b")
            #expect(r.status == 2, "--timeout \(timeout): \(r.stderr)")
            #expect(r.stderr.contains("--timeout"), "--timeout \(timeout): \(r.stderr)")
        }
        r = try nfsCp("--version")
        #expect(r.status == 0)
        if let expected = TestServer.environment["NFS_TEST_EXPECT_LIBNFS"] {
            #expect(r.stdout.contains("libnfs \(expected) "), "\(r.stdout)")
        }
        r = try nfsCp("--help")
        #expect(r.status == 0)
        #expect(r.stdout.contains("--no-clobber") && r.stdout.contains("Exit status"))
    }

    @Test("SIGINT or SIGTERM in the middle of a large copy exits 128+N and leaves no partial file under the destination name",
          arguments: [SIGINT, SIGTERM])
    func interrupted(signal: Int32) throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpf-signal\(signal)")
        defer { scratch.cleanUp() }
        let big = scratch.local("big.src")
        // Sparse 2 GiB source: cheap to create, long enough to copy that the signal lands mid-way.
        _ = FileManager.default.createFile(atPath: big, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: big))
        try handle.truncate(atOffset: 2 << 30)
        try handle.close()
        try scratch.writeLocal("dest", Array("previous".utf8))

        let copy = try Tool.start("nfs-cp", [big, scratch.url("dest").description])
        // Wait until the temporary file has grown, i.e. the copy is under way.
        let deadline = ContinuousClock.now + .seconds(30)
        var started = false
        while ContinuousClock.now < deadline && copy.process.isRunning {
            if let temp = temporaries(in: scratch.local).first,
               let size = try? FileManager.default.attributesOfItem(atPath: scratch.local(temp))[.size] as? Int, size > 8 << 20 {
                started = true
                break
            }
            usleep(20_000)
        }
        #expect(started, "the copy never got going")
        copy.signal(signal)
        let r = try copy.wait(timeout: .seconds(60))
        #expect(r.status == 128 + signal, "\(r.stderr)")
        #expect(try scratch.readLocal("dest") == Array("previous".utf8))
        #expect(temporaries(in: scratch.local).isEmpty)
    }
}

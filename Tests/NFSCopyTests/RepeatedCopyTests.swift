import Foundation
import LibNFS
import NFSCommandLine
import NFSTestSupport
import SystemPackage
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A tree as the local disk sees it: every path below `root` with its kind, size,
/// modification time (to the nanosecond) and inode, so a rewrite or a touch shows.
func diskListing(_ root: String) -> [String: String] {
    var listing: [String: String] = [:]
    for case let path as String in FileManager.default.enumerator(atPath: root)?.allObjects ?? [] {
        var st = stat()
        guard lstat(root + "/" + path, &st) == 0 else { continue }
        listing[path] = "\(st.st_mode & S_IFMT) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_ino)"
    }
    return listing
}

func jsonObject(_ result: ToolResult) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
}

@Suite("nfs-cp for repeated copies: --update, --checksum, filters, --dry-run, --delete, --sparse", TestServer.required)
struct RepeatedCopyTests {
    /// `src` under the scratch directory: 20 files in three levels, a symbolic link.
    static func makeTree(_ scratch: Scratch) throws {
        for dir in ["src", "src/a", "src/a/b"] {
            try FileManager.default.createDirectory(atPath: scratch.local(dir), withIntermediateDirectories: false)
        }
        for i in 0..<20 {
            let dir = ["src", "src/a", "src/a/b"][i % 3]
            try scratch.writeLocal("\(dir)/f\(i)", randomBytes(100 + i * 37))
        }
        try FileManager.default.createSymbolicLink(atPath: scratch.local("src/link"), withDestinationPath: "f0")
    }

    @Test("a second -u run copies nothing and reports every file skipped; a changed file is copied again")
    func updateSkipsUnchanged() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpu-update")
        defer { scratch.cleanUp() }
        try Self.makeTree(scratch)
        try FileManager.default.createDirectory(atPath: scratch.local("out"), withIntermediateDirectories: false)
        var r = try nfsCp("-r", "-p", scratch.local("src"), scratch.url("out").description)
        #expect(r.status == 0, "\(r.stderr)")
        let before = diskListing(scratch.local("out"))

        r = try nfsCp("-r", "-p", "-u", "--json", scratch.local("src"), scratch.url("out").description)
        #expect(r.status == 0, "\(r.stderr)")
        var summary = try jsonObject(r)
        #expect(summary["files"] as? Int == 0 && summary["symlinks"] as? Int == 0, "\(r.stdout)")
        #expect(summary["skipped"] as? Int == 21, "\(r.stdout)")
        #expect(summary["skippedReasons"] as? [String: Int] == ["same size and time": 20, "same link": 1], "\(r.stdout)")
        // Not one destination file was rewritten (a copy would be a new inode, renamed into place).
        #expect(diskListing(scratch.local("out")) == before)

        // Same size, new bytes, a later time; and a new size at the same time.
        try scratch.writeLocal("src/a/f1", randomBytes(100 + 37))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 60)], ofItemAtPath: scratch.local("src/a/f1"))
        let time = try FileManager.default.attributesOfItem(atPath: scratch.local("src/f3"))[.modificationDate] as! Date
        try scratch.writeLocal("src/f3", randomBytes(5000))
        try FileManager.default.setAttributes([.modificationDate: time], ofItemAtPath: scratch.local("src/f3"))
        r = try nfsCp("-r", "-p", "-u", "--json", scratch.local("src"), scratch.url("out").description)
        #expect(r.status == 0, "\(r.stderr)")
        summary = try jsonObject(r)
        #expect(summary["files"] as? Int == 2 && summary["skipped"] as? Int == 19, "\(r.stdout)")
        for name in ["src/a/f1", "src/f3", "src/a/b/f2"] {
            #expect(try scratch.readLocal("out/" + name) == scratch.readLocal(name), "\(name)")
        }
        // The directories written into still get their source's times (-p) after the writes.
        for dir in ["src", "src/a", "src/a/b"] {
            let times = try [scratch.local(dir), scratch.local("out/" + dir)].map {
                try FileManager.default.attributesOfItem(atPath: $0)[.modificationDate] as! Date
            }
            #expect(abs(times[0].timeIntervalSince(times[1])) < 0.001, "\(dir): \(times)")
        }
        #expect(temporaries(in: scratch.local).isEmpty)
    }

    @Test("-c copies a file whose bytes differ at the same size and time, which -u skips, and skips identical ones")
    func checksumCompares() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpu-checksum")
        defer { scratch.cleanUp() }
        try FileManager.default.createDirectory(atPath: scratch.local("src"), withIntermediateDirectories: false)
        let size = try server.mount().readSize * 2 + 3
        try scratch.writeLocal("src/same", randomBytes(size))
        try scratch.writeLocal("src/differs", randomBytes(size))
        try FileManager.default.createDirectory(atPath: scratch.local("out"), withIntermediateDirectories: false)
        var r = try nfsCp("-r", "-p", scratch.url("src").description, scratch.local("out"))
        #expect(r.status == 0, "\(r.stderr)")
        // One byte changed in the copy, its size and time kept: the quick check cannot see it.
        let copy = scratch.local("out/src/differs")
        let time = try FileManager.default.attributesOfItem(atPath: copy)[.modificationDate] as! Date
        var bytes = try scratch.readLocal("out/src/differs")
        bytes[size / 2] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: copy))
        try FileManager.default.setAttributes([.modificationDate: time], ofItemAtPath: copy)

        r = try nfsCp("-r", "-p", "-u", "--json", scratch.url("src").description, scratch.local("out"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try jsonObject(r)["skipped"] as? Int == 2, "\(r.stdout)")
        #expect(try scratch.readLocal("out/src/differs") == bytes)

        r = try nfsCp("-r", "-p", "-c", "--json", scratch.url("src").description, scratch.local("out"))
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try jsonObject(r)
        #expect(summary["files"] as? Int == 1, "\(r.stdout)")
        #expect(summary["skippedReasons"] as? [String: Int] == ["same checksum": 1], "\(r.stdout)")
        #expect(try scratch.readLocal("out/src/differs") == scratch.readLocal("src/differs"))
    }

    @Test("excluded paths are neither read from the source nor written or deleted at the destination; first match wins")
    func excludeAndInclude() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpu-filter")
        defer { scratch.cleanUp() }
        for dir in ["src", "src/build", "src/lib", "src/lib/build", "src/docs", "src/docs/api", "src/docs/api/v1"] {
            try FileManager.default.createDirectory(atPath: scratch.local(dir), withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o777])
        }
        let files = ["top.log", "lib/deep.log", "main.o", "keep.o", "lib/x.o", "build/out", "lib/build/out",
                     "docs/api/v1/page.html", "docs/api/index.html", "docs/readme", "a.c"]
        for file in files { try scratch.writeLocal("src/" + file, Array(file.utf8)) }
        // Unreadable to uid 1000: walking into it would fail the copy.
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: scratch.local("src/build"))
        // At the destination, an excluded name that --delete must keep, and one it must remove.
        try FileManager.default.createDirectory(atPath: scratch.local("out/src"), withIntermediateDirectories: true)
        try scratch.writeLocal("out/src/old.o", Array("keep me".utf8))
        try scratch.writeLocal("out/src/stale.c", Array("remove me".utf8))

        let r = try nfsCp("-r", "--delete", "--json", "--uid", "1000", "--gid", "1000",
                          "--include", "keep.o", "--exclude", "*.o", "--exclude", "/top.log", "--exclude", "build/",
                          "--exclude", "docs/**/v1/", "--exclude=docs/**.html",
                          scratch.url("src").description, scratch.local("out"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try jsonObject(r)["deleted"] as? Int == 1, "\(r.stdout)")
        var copied = Set((FileManager.default.enumerator(atPath: scratch.local("out/src"))?.allObjects as? [String]) ?? [])
        copied = copied.filter { !$0.hasSuffix("docs") && !$0.hasSuffix("api") && $0 != "lib" }
        #expect(copied == ["lib/deep.log", "keep.o", "docs/readme", "a.c", "old.o"], "\(copied.sorted())")
        #expect(try scratch.readLocal("out/src/old.o") == Array("keep me".utf8))
        #expect(try scratch.readLocal("out/src/keep.o") == Array("keep.o".utf8))
    }

    @Test("a pattern matches the bytes of a name that is not UTF-8")
    func patternOfBytes() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpu-bytes")
        defer { scratch.cleanUp() }
        let source = scratch.localPath.appending("src")
        try ByteName.mkdirLocal(source)
        try ByteName.writeLocal(source.appending(ByteName.component(Array("caf".utf8) + [0xE9] + Array(".txt".utf8))), [1])
        try ByteName.writeLocal(source.appending(ByteName.component(Array("cafe.txt".utf8))), [2])
        // Through sh and printf, since Foundation's Process passes arguments as Strings.
        let script = #"exec "$0" -r --exclude "$(printf 'caf\351*')" "$1" "$2""#
        let r = try Tool.run(program: "/bin/sh", ["-c", script, Tool.url("nfs-cp").path, source.string,
                                                   scratch.url("out").description])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(ByteName.listLocal(scratch.localPath.appending("out")) == [Array("cafe.txt".utf8)])
    }

    @Test("--dry-run names every step and changes nothing on either side, by a full listing with sizes and times")
    func dryRunChangesNothing() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpu-dry")
        defer { scratch.cleanUp() }
        try Self.makeTree(scratch)
        try FileManager.default.createDirectory(atPath: scratch.local("out"), withIntermediateDirectories: false)
        var r = try nfsCp("-r", "-p", scratch.local("src"), scratch.url("out").description)
        #expect(r.status == 0, "\(r.stderr)")
        try scratch.writeLocal("src/new", [1, 2, 3])
        try FileManager.default.createDirectory(atPath: scratch.local("src/newdir"), withIntermediateDirectories: false)
        try scratch.writeLocal("src/newdir/inside", [4])
        try scratch.writeLocal("src/f0", [5, 6])
        try scratch.writeLocal("out/src/a/extra", [7])
        let before = (diskListing(scratch.local("src")), diskListing(scratch.local("out")))

        r = try nfsCp("-r", "-p", "-u", "--delete", "--dry-run", scratch.local("src"), scratch.url("out").description)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(diskListing(scratch.local("src")) == before.0)
        #expect(diskListing(scratch.local("out")) == before.1)
        let base = scratch.url("out").description.replacingOccurrences(of: "?", with: "/src?").split(separator: "?")[0]
        let lines = Set(r.stdout.split(separator: "\n").map(String.init))
        for expected in ["copy \(base)/new", "mkdir \(base)/newdir", "copy \(base)/newdir/inside",
                         "replace \(base)/f0", "skip \(base)/f3 (same size and time)", "skip \(base)/link (same link)",
                         "delete \(base)/a/extra"] {
            #expect(lines.contains(expected), "\(expected) not in:\n\(r.stdout)")
        }
        #expect(lines.count == 25, "\(r.stdout)")

        r = try nfsCp("-r", "-p", "-u", "--delete", "--dry-run", "--json", scratch.local("src"), scratch.url("out").description)
        let plan = try jsonObject(r)["plan"] as? [[String: Any]] ?? []
        #expect(plan.count == 25 && plan.last?["action"] as? String == "delete", "\(r.stdout)")
        #expect(diskListing(scratch.local("out")) == before.1)
    }

    @Test("a tree planned with its subdirectories listed at once still comes out depth first in name order")
    func planOrderIsDepthFirst() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpu-order")
        defer { scratch.cleanUp() }
        // Wide and deep, with files before, between and after directories in name order.
        for d in ["a", "m", "z"] {
            for s in ["b", "n", "y"] {
                try FileManager.default.createDirectory(atPath: scratch.local("src/\(d)/\(s)/deep"), withIntermediateDirectories: true)
                for f in ["0", "o", "zz"] { try scratch.writeLocal("src/\(d)/\(s)/\(f)", [1]) }
                try scratch.writeLocal("src/\(d)/\(s)/deep/x", [2])
            }
            for f in ["c", "p"] { try scratch.writeLocal("src/\(d)/\(f)", [3]) }
        }
        for f in ["0", "n", "zzz"] { try scratch.writeLocal("src/\(f)", [4]) }
        try FileManager.default.createDirectory(atPath: scratch.local("out"), withIntermediateDirectories: false)

        let r = try nfsCp("-r", "--dry-run", scratch.local("src"), scratch.url("out").description)
        #expect(r.status == 0, "\(r.stderr)")
        let base = String(scratch.url("out").description.replacingOccurrences(of: "?", with: "/src?").split(separator: "?")[0])
        // The oracle: the source walked on local disk, one directory at a time, names in byte order.
        func walk(_ below: String) throws -> [String] {
            let names = try FileManager.default.contentsOfDirectory(atPath: scratch.local("src" + below))
                .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            return try names.flatMap { name -> [String] in
                var isDirectory: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: scratch.local("src\(below)/\(name)"), isDirectory: &isDirectory)
                return isDirectory.boolValue ? ["mkdir \(base)\(below)/\(name)"] + (try walk("\(below)/\(name)"))
                                             : ["copy \(base)\(below)/\(name)"]
            }
        }
        let expected = ["mkdir \(base)"] + (try walk(""))
        #expect(expected.count == 1 + 3 + 3 * (1 + 2 + 3 * (1 + 3 + 1 + 1)))
        #expect(r.stdout.split(separator: "\n").map(String.init) == expected, "\(r.stdout)")
    }

    @Test("--delete removes exactly the entries the source lacks, a directory with its contents")
    func deleteRemovesExtras() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpu-delete")
        defer { scratch.cleanUp() }
        try Self.makeTree(scratch)
        try FileManager.default.createDirectory(atPath: scratch.local("out"), withIntermediateDirectories: false)
        var r = try nfsCp("-r", "-p", scratch.local("src"), scratch.url("out").description)
        #expect(r.status == 0, "\(r.stderr)")
        try FileManager.default.createDirectory(atPath: scratch.local("out/src/a/gone/deeper"), withIntermediateDirectories: true)
        for extra in ["out/src/x", "out/src/a/b/y", "out/src/a/gone/z", "out/src/a/gone/deeper/w", "out/beside"] {
            try scratch.writeLocal(extra, [9])
        }
        try FileManager.default.removeItem(atPath: scratch.local("src/f0"))
        try FileManager.default.removeItem(atPath: scratch.local("src/link"))
        let kept = diskListing(scratch.local("out")).filter {
            !["src/x", "src/a/b/y", "src/a/gone", "src/a/gone/z", "src/a/gone/deeper", "src/a/gone/deeper/w",
              "src/f0", "src/link"].contains($0.key)
        }

        r = try nfsCp("-r", "-p", "-u", "--delete", "--json", scratch.local("src"), scratch.url("out").description)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try jsonObject(r)["deleted"] as? Int == 8, "\(r.stdout)")
        // Every file left stays as it was (same inode and time); beside the copied directory nothing is touched.
        let after = diskListing(scratch.local("out"))
        #expect(Set(after.keys) == Set(kept.keys))
        let files = kept.filter { !$0.value.hasPrefix("\(S_IFDIR) ") }
        #expect(after.filter { files[$0.key] != nil } == files)
        #expect(files.count == 20, "\(files.keys.sorted())")
    }

    @Test("--delete deletes nothing in a directory where a file below it failed, and still cleans the others")
    func deleteHoldsBackAfterFailure() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpu-delete-fail")
        defer { scratch.cleanUp() }
        for dir in ["src", "src/bad", "src/bad/inner", "src/good"] {
            try FileManager.default.createDirectory(atPath: scratch.local(dir), withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o777])
        }
        for file in ["src/top", "src/bad/inner/ok", "src/bad/inner/locked", "src/good/g"] {
            try scratch.writeLocal(file, Array(file.utf8))
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: scratch.local("src/bad/inner/locked"))
        for dir in ["out/src/bad/inner", "out/src/good"] {
            try FileManager.default.createDirectory(atPath: scratch.local(dir), withIntermediateDirectories: true)
        }
        let extras = ["out/src/extra", "out/src/bad/extra", "out/src/bad/inner/extra"]
        for extra in extras + ["out/src/good/extra"] { try scratch.writeLocal(extra, [1]) }

        // As uid 1000 the server refuses to read the file with mode 000.
        let r = try nfsCp("-r", "--delete", "--json", "--uid", "1000", "--gid", "1000",
                          scratch.url("src").description, scratch.local("out"))
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("bad/inner/locked"), "\(r.stderr)")
        let summary = try jsonObject(r)
        #expect(summary["deleted"] as? Int == 1 && summary["files"] as? Int == 3, "\(r.stdout)")
        for extra in extras { #expect(FileManager.default.fileExists(atPath: scratch.local(extra)), "\(extra)") }
        #expect(!FileManager.default.fileExists(atPath: scratch.local("out/src/good/extra")))
        #expect(try scratch.readLocal("out/src/bad/inner/ok") == Array("src/bad/inner/ok".utf8))
    }

    @Test("--delete without -r is a usage error")
    func deleteNeedsRecursive() throws {
        let r = try nfsCp("--delete", "/dev/null", "/tmp/nowhere")
        #expect(r.status == 2)
        #expect(r.stderr.contains("--delete needs -r"), "\(r.stderr)")
    }

    @Test("--sparse keeps a 1 GiB file with 4 KiB of data under 1 MiB on the destination's disk, both ways")
    func sparseStaysSparse() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("cpu-sparse")
        defer { scratch.cleanUp() }
        let data = randomBytes(4096)
        let offset: UInt64 = 300 << 20 + 123
        func makeSparse(_ path: String, size: UInt64) throws {
            let fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite])
            defer { try? fd.close() }
            _ = try fd.writeAll(toAbsoluteOffset: Int64(offset), data)
            #expect(ftruncate(fd.rawValue, off_t(size)) == 0)
        }
        func allocated(_ path: String) -> Int64 {
            var st = stat()
            return stat(path, &st) == 0 ? Int64(st.st_blocks) * 512 : -1
        }
        /// Same size, the data at its place, zeros everywhere else (read through the local disk).
        func expectImage(_ path: String, size: UInt64) throws {
            let fd = try FileDescriptor.open(FilePath(path), .readOnly)
            defer { try? fd.close() }
            var buffer = [UInt8](repeating: 0xAA, count: 8 << 20)
            let zeros = [UInt8](repeating: 0, count: buffer.count)
            var position: UInt64 = 0
            while true {
                let n = try buffer.withUnsafeMutableBytes { try fd.read(into: $0) }
                if n == 0 { break }
                if memcmp(buffer, zeros, n) == 0 { position += UInt64(n); continue }
                for i in 0..<n where buffer[i] != 0 {
                    let at = position + UInt64(i)
                    guard at >= offset && at < offset + 4096 && buffer[i] == data[Int(at - offset)] else {
                        Issue.record("byte \(at) of \(path) is \(buffer[i])")
                        return
                    }
                }
                position += UInt64(n)
            }
            #expect(position == size)
        }

        let big: UInt64 = 1 << 30
        try makeSparse(scratch.local("big.img"), size: big)
        let local = NSTemporaryDirectory() + "nfs-cp-sparse-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: local) }
        try makeSparse(local + "/up.img", size: big)
        var r = try nfsCp("--sparse", local + "/up.img", scratch.url("up.img").description)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(allocated(scratch.local("up.img")) < 1 << 20, "\(allocated(scratch.local("up.img"))) bytes allocated")
        try expectImage(scratch.local("up.img"), size: big)

        // Down, a smaller image ending in a hole: reading a whole GiB over NFS would only add time.
        try makeSparse(scratch.local("down.img"), size: 400 << 20)
        r = try nfsCp("--sparse", scratch.url("down.img").description, local + "/down.img")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(allocated(local + "/down.img") < 1 << 20, "\(allocated(local + "/down.img")) bytes allocated")
        try expectImage(local + "/down.img", size: 400 << 20)

        // Without --sparse the zeros are written.
        r = try nfsCp(scratch.url("down.img").description, local + "/dense.img")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(allocated(local + "/dense.img") >= 400 << 20)
    }
}

@Suite("--exclude and --include patterns")
struct PathFilterTests {
    func excluded(_ rules: [(PathFilter.Action, String)], _ path: String, directory: Bool = false) throws -> Bool {
        var filter = PathFilter()
        for (action, pattern) in rules { try filter.add(action, pattern: Array(pattern.utf8)) }
        return filter.excludes(Array(path.utf8), isDirectory: directory)
    }

    @Test("a pattern without a slash matches a name at any depth; with one, the path from the source root")
    func anchoring() throws {
        #expect(try excluded([(.exclude, "*.o")], "a/b/c.o"))
        #expect(try excluded([(.exclude, "/x.o")], "x.o"))
        #expect(try !excluded([(.exclude, "/x.o")], "a/x.o"))
        #expect(try excluded([(.exclude, "a/x.o")], "a/x.o"))
        #expect(try !excluded([(.exclude, "a/x.o")], "b/a/x.o"))
    }

    @Test("* and ? stay within a name, ** crosses directories (and **/ may match none), sets and escapes work")
    func wildcards() throws {
        #expect(try !excluded([(.exclude, "a/*.c")], "a/b/c.c"))
        #expect(try excluded([(.exclude, "a/**.c")], "a/b/c.c"))
        #expect(try excluded([(.exclude, "a/**/c.c")], "a/c.c"))
        #expect(try excluded([(.exclude, "a/**/c.c")], "a/x/y/c.c"))
        #expect(try excluded([(.exclude, "f?o")], "foo"))
        #expect(try !excluded([(.exclude, "a?b")], "a/b"))
        #expect(try excluded([(.exclude, "[a-c]x")], "bx"))
        #expect(try !excluded([(.exclude, "[!a-c]x")], "bx"))
        #expect(try excluded([(.exclude, "\\*")], "*"))
        #expect(try !excluded([(.exclude, "\\*")], "x"))
    }

    @Test("the first matching rule wins, a trailing slash matches directories only, and an empty pattern is refused")
    func order() throws {
        #expect(try !excluded([(.include, "keep.o"), (.exclude, "*.o")], "keep.o"))
        #expect(try excluded([(.exclude, "*.o"), (.include, "keep.o")], "keep.o"))
        #expect(try excluded([(.exclude, "build/")], "x/build", directory: true))
        #expect(try !excluded([(.exclude, "build/")], "x/build", directory: false))
        #expect(throws: CopyUsageError.self) { try excluded([(.exclude, "/")], "x") }
    }
}

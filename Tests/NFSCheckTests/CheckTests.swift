import Foundation
import LibNFS
import NFSTestSupport
import Testing

func nfsCheck(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> ToolResult {
    try Tool.run("nfs-check", arguments, timeout: timeout)
}

func sha256Hex(of path: String) throws -> String {
    String(try Tool.run(program: "/usr/bin/sha256sum", [path]).stdout.prefix(64))
}

/// Parses nfs-check's --json output into its fields.
struct CheckJSON: Decodable {
    struct Step: Decodable { let name: String; let status: String; let milliseconds: Double; let detail: String; let values: [String: Double] }
    let url: String
    let round: Int
    let status: String
    let exitCode: Int32
    let milliseconds: Double
    let steps: [Step]
}

@Suite("nfs-check against a live share", TestServer.required)
struct CheckTests {
    @Test("a good share passes every step with exit 0, and the write test leaves nothing behind")
    func goodShare() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("chk-good")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("data.bin", randomBytes(3_000_000))
        let hash = try sha256Hex(of: scratch.local("data.bin"))
        let r = try nfsCheck([scratch.url().description, "--read", "data.bin", "--expect-size", "3000000",
                              "--expect-sha256", hash, "--write-test", "--min-free", "1%", "--json"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let report = try JSONDecoder().decode(CheckJSON.self, from: Data(r.stdout.utf8))
        #expect(report.status == "OK" && report.exitCode == 0 && report.round == 1)
        #expect(report.steps.map(\.name) == ["mount", "statvfs", "list", "read data.bin", "write-test"])
        #expect(report.steps.allSatisfy { $0.status == "OK" && $0.milliseconds >= 0 })
        #expect(report.steps[2].values["entries"] == 1)
        #expect(report.steps[3].values["bytes"] == 3_000_000)
        #expect(report.steps[3].detail.contains("sha256 matches"))
        // The statvfs step reports the export's file system as the local statvfs sees it
        // (available space within 2 GiB, as other suites write meanwhile).
        let local = try LocalFileSystemStats(server.export)
        let available = try #require(report.steps[1].values["free_bytes"])
        #expect(abs(available - Double(local.availableBytes)) < Double(2 << 30), "available \(available) vs \(local.availableBytes)")
        let total = try #require(report.steps[1].values["total_bytes"])
        #expect(UInt64(total) / 4096 == local.totalBytes / 4096, "total \(total) vs \(local.totalBytes)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.local) == ["data.bin"])
    }

    @Test("a wrong sha256 or size is CRITICAL, exit 2, naming the file")
    func wrongDigest() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("chk-sha")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("f", Array("abc".utf8))
        var r = try nfsCheck([scratch.url().description, "--read", "f", "--expect-sha256", String(repeating: "0", count: 64)])
        #expect(r.status == 2)
        #expect(r.stdout.hasPrefix("NFS CRITICAL - read f: sha256 "))
        r = try nfsCheck([scratch.url().description, "--read", "f", "--expect-size", "f=4"])
        #expect(r.status == 2)
        #expect(r.stdout.contains("size 3, expected 4"))
    }

    @Test("a missing file is CRITICAL with the reason")
    func missingFile() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("chk-missing")
        defer { scratch.cleanUp() }
        let r = try nfsCheck([scratch.url().description, "--read", "nope.txt", "--json"])
        #expect(r.status == 2)
        let report = try JSONDecoder().decode(CheckJSON.self, from: Data(r.stdout.utf8))
        let step = try #require(report.steps.last)
        #expect(step.name == "read nope.txt" && step.status == "CRITICAL")
        #expect(step.detail.contains("No such file or directory") && step.detail.contains("/nope.txt"))
    }

    @Test("--write-test on a share the user cannot write is CRITICAL and leaves nothing")
    func readOnlyWriteTest() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("chk-ro")
        defer { scratch.cleanUp() }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: scratch.local)
        var url = scratch.url()
        url.query += "&uid=1000&gid=1000"
        let r = try nfsCheck([url.description, "--write-test"])
        #expect(r.status == 2)
        #expect(r.stdout.contains("write-test") && r.stdout.contains("Permission denied"), "\(r.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.local).isEmpty)
    }

    @Test("--min-free above what is free is CRITICAL")
    func minFree() throws {
        let server = try TestServer.require()
        let r = try nfsCheck([server.url.description, "--min-free", "100%"])
        #expect(r.status == 2)
        #expect(r.stdout.contains("at least 100.0% required"))
    }

    @Test("latency thresholds turn slow steps into WARNING and CRITICAL")
    func thresholds() throws {
        let server = try TestServer.require()
        #expect(try nfsCheck([server.url.description, "--warn-ms", "0"]).status == 1)
        #expect(try nfsCheck([server.url.description, "--crit-ms", "0"]).status == 2)
        #expect(try nfsCheck([server.url.description, "--warn-ms", "60000"]).status == 0)
    }

    @Test("--prometheus prints HELP and TYPE for every family and a sample per step")
    func prometheus() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("chk-prom")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("f", randomBytes(1000))
        let r = try nfsCheck([scratch.url().description, "--read", "f", "--prometheus"])
        #expect(r.status == 0)
        var help = Set<String>(), type = [String: String](), samples = [String: [(labels: String, value: Double)]]()
        for line in r.stdout.split(separator: "\n").map(String.init) {
            if line.hasPrefix("# HELP ") {
                help.insert(String(line.dropFirst(7).split(separator: " ")[0]))
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                type[String(parts[0])] = String(parts[1])
            } else {
                let brace = try #require(line.firstIndex(of: "{"))
                let close = try #require(line.lastIndex(of: "}"))
                let name = String(line[..<brace])
                let value = try #require(Double(line[line.index(close, offsetBy: 2)...]))
                samples[name, default: []].append((String(line[line.index(after: brace)..<close]), value))
            }
        }
        #expect(Set(samples.keys) == help && Set(samples.keys) == Set(type.keys))
        #expect(type.values.allSatisfy { $0 == "gauge" })
        #expect(samples["nfs_check_status"]?.map(\.value) == [0])
        #expect(samples["nfs_check_step_status"]?.count == 4)
        #expect(samples["nfs_check_step_duration_seconds"]?.allSatisfy { $0.value >= 0 && $0.labels.contains("step=\"") } == true)
        #expect(samples["nfs_check_bytes"]?.first?.value == 1000)
        #expect(samples["nfs_check_bytes"]?.first?.labels.contains("step=\"read f\"") == true)
    }

    @Test("--repeat prints one JSON object per round")
    func repeatRounds() throws {
        let server = try TestServer.require()
        let r = try nfsCheck([server.url.description, "--repeat", "3", "--interval", "0.1", "--json"])
        #expect(r.status == 0)
        let rounds = try r.stdout.split(separator: "\n").map { try JSONDecoder().decode(CheckJSON.self, from: Data($0.utf8)) }
        #expect(rounds.map(\.round) == [1, 2, 3])
    }

    @Test("with --repeat the exit status is the worst round's, even when later rounds pass")
    func repeatWorstStatus() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("chk-worst")
        defer { scratch.cleanUp() }
        // Round 1 finds no file (CRITICAL); the file appears during the first interval.
        let check = try Tool.start("nfs-check", [scratch.url().description, "--read", "late", "--repeat", "3",
                                                 "--interval", "3", "--json"])
        usleep(1_500_000)
        try scratch.writeLocal("late", [1, 2, 3])
        let r = try check.wait(timeout: .seconds(60))
        let rounds = try r.stdout.split(separator: "\n").map { try JSONDecoder().decode(CheckJSON.self, from: Data($0.utf8)) }
        #expect(rounds.map(\.status) == ["CRITICAL", "OK", "OK"], "\(r.stdout)")
        #expect(r.status == 2, "the worst of the rounds")
    }

    @Test("the default output is a Nagios line with perfdata, then one line per step with status, time and detail")
    func humanOutput() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("chk-human")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("f", randomBytes(2048))
        let r = try nfsCheck([scratch.url().description, "--read", "f", "--read", "missing"])
        #expect(r.status == 2)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 6, "\(r.stdout)")
        let summary = try #require(lines.first)
        #expect(summary.hasPrefix("NFS CRITICAL - read missing: "), "\(summary)")
        let perfdata = String(try #require(summary.split(separator: "|").last))
        let pairs = perfdata.matches(of: /'([^']*)'=([0-9.]+)ms/).map { (String($0.1), Double($0.2)) }
        #expect(pairs.map(\.0) == ["mount", "statvfs", "list", "read f", "read missing"], "\(perfdata)")
        #expect(pairs.allSatisfy { $0.1 != nil })
        let steps = lines.dropFirst().map { line in line.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(steps.map { $0[0] } == ["OK", "OK", "OK", "OK", "CRITICAL"])
        #expect(steps.map { $0[1] } == ["mount", "statvfs", "list", "read", "read"])
        #expect(steps[3][2] == "f" && steps[4][2] == "missing")
        #expect(lines[4].contains("2.0 KiB") || lines[4].contains("2048 B"), "\(lines[4])")
        #expect(lines[5].contains("No such file or directory") && lines[5].contains("/missing"), "\(lines[5])")
        #expect(lines[3].contains("1 entries") || lines[3].contains("1 entry"), "\(lines[3])")
    }

    @Test("bad arguments exit 3", arguments: [
        ["not-a-url"], ["nfs://127.0.0.1/x", "--timeout", "0"], ["nfs://127.0.0.1/x", "--json", "--prometheus"],
        ["nfs://127.0.0.1/x", "--expect-size", "5"], ["nfs://127.0.0.1/x", "--read", "a", "--expect-sha256", "xyz"],
        ["nfs://127.0.0.1/x", "--min-free", "lots"], [],
    ])
    func badArguments(arguments: [String]) throws {
        let r = try nfsCheck(arguments)
        #expect(r.status == 3, "\(arguments): \(r.stderr)")
        #expect(r.stderr.contains("nfs-check:"))
    }
}

@Suite("nfs-check never hangs", TestServer.required)
struct CheckDeadlineTests {
    @Test("a closed loopback port is CRITICAL at the mount")
    func closedPort() throws {
        let port = try closedLoopbackPort()
        let (r, time) = try timed { try nfsCheck(["nfs://127.0.0.1/x?nfsport=\(port)&mountport=\(port)", "--timeout", "3"]) }
        #expect(r.status == 2)
        #expect(r.stdout.hasPrefix("NFS CRITICAL - mount:") && r.stdout.contains("Connection refused"))
        #expect(time < .seconds(8), "took \(time)")
    }

    @Test("a listener that never answers is CRITICAL within the deadline")
    func silentServer() throws {
        let listener = try SilentListener()
        let (r, time) = try timed {
            try nfsCheck(["nfs://127.0.0.1/x?nfsport=\(listener.port)&mountport=\(listener.port)", "--timeout", "2", "--json"])
        }
        #expect(r.status == 2)
        let report = try JSONDecoder().decode(CheckJSON.self, from: Data(r.stdout.utf8))
        #expect(report.steps.last?.name == "mount" && report.steps.last?.status == "CRITICAL")
        #expect(time < .seconds(7), "took \(time)")
    }

    @Test("a server that stops answering mid-read is CRITICAL within the deadline, naming the read")
    func stallMidRead() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("chk-stall")
        defer { scratch.cleanUp() }
        try scratch.writeLocal("big", randomBytes(8 << 20))
        // Enough for the mount, the listing and the first megabytes of the file, then silence.
        let proxied = try ProxiedServer(server, directory: scratch.url(), stallAfter: 3 << 20)
        defer { proxied.shutdown() }
        let (r, time) = try timed { try nfsCheck([proxied.url.description, "--read", "big", "--timeout", "3", "--json"]) }
        #expect(r.status == 2)
        let report = try JSONDecoder().decode(CheckJSON.self, from: Data(r.stdout.utf8))
        #expect(report.steps.first?.status == "OK")
        #expect(report.steps.last?.name == "read big" && report.steps.last?.status == "CRITICAL", "\(r.stdout)")
        #expect(time < .seconds(9), "took \(time)")
    }
}

import ArgumentParser
import Foundation
import LibNFS
import NFSCommandLine

@main
struct NFSCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nfs-check",
        abstract: "Check that an NFS share mounts, lists, reads and writes, fast enough and within a deadline.",
        usage: "nfs-check URL [options]",
        discussion: """
        Mounts the share the URL names, such as nfs://server/export/dir?version=3, without a kernel mount, then runs and times, in order: mount, statvfs (--min-free), a listing of the URL's directory, each --read, and --write-test. The whole run ends within --timeout: an unreachable host, a closed port or a server that stops answering ends in CRITICAL naming the step, never a hang.

        URLs take the arguments nfs-cp --help lists, and %XX for any byte of a name; anything else is UNKNOWN (exit 3). --read paths are taken byte for byte.

        --write-test writes .nfs-check-<random> in the URL's directory and removes it. When the deadline cuts the test short, a second connection removes the file (taking up to 2 seconds more); a file that even that could not remove (the server vanished) is removed by a later --write-test run once it is over a day old.

        Examples:
          nfs-check "nfs://filer/export/data?version=3"
          nfs-check "nfs://filer/export/data" --read current/manifest.json --expect-sha256 9f2c…e1 --write-test
          nfs-check "nfs://filer/export/data" --min-free 10% --crit-ms 500 --prometheus > /var/lib/node_exporter/nfs.prom
          nfs-check "nfs://filer/export/data" --repeat 60 --interval 1 --json

        Exit status (Nagios/Icinga plugin convention): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad usage or arguments). With --repeat, the worst status of all rounds.
        """,
        version: "0.1.0, on \(NFSLibrary.description)"
    )

    @Argument(help: "The share or directory to check: an nfs:// URL.")
    var url: String

    @Option(name: .customLong("min-free"), help: "CRITICAL when less space is available: bytes (with K, M, G, T suffixes) or a percentage such as 10%.")
    var minFree: String?

    @Option(name: .customLong("read"), help: "Read this file (relative to the URL's directory), reporting size and throughput. Repeatable.")
    var reads: [String] = []

    @Option(name: .customLong("expect-size"), help: "Expected size in bytes of a --read file: N for the only one, or PATH=N.")
    var expectSizes: [String] = []

    @Option(name: .customLong("expect-sha256"), help: "Expected SHA-256 (hex) of a --read file: HEX for the only one, or PATH=HEX.")
    var expectHashes: [String] = []

    @Flag(name: .customLong("write-test"), help: "Create a uniquely named file, write a pattern, fsync, read it back, compare, and remove it (see below).")
    var writeTest = false

    @Option(name: .customLong("warn-ms"), help: "WARNING when any step takes longer than this many milliseconds.")
    var warnMilliseconds: Double?

    @Option(name: .customLong("crit-ms"), help: "CRITICAL when any step takes longer than this many milliseconds.")
    var criticalMilliseconds: Double?

    @Flag(help: "Print one JSON object per round (steps with name, status, milliseconds and detail).")
    var json = false

    @Flag(help: "Print Prometheus text exposition (for node_exporter's textfile collector).")
    var prometheus = false

    @Option(help: "Deadline in seconds for a whole round, mount included.")
    var timeout: Double = 10

    @Option(help: "Run the check this many times (a simple soak); one line or JSON object per round.")
    var `repeat`: Int = 1

    @Option(help: "Seconds to wait between rounds with --repeat.")
    var interval: Double = 1

    func validate() throws {
        do { _ = try NFSURL(url) } catch { throw ValidationError("\(error)") }
        guard timeout > 0 && timeout <= 86_400 else { throw ValidationError("--timeout must be a positive number of seconds") }
        guard `repeat` >= 1 else { throw ValidationError("--repeat must be at least 1") }
        guard interval >= 0 && interval.isFinite else { throw ValidationError("--interval must not be negative") }
        guard !(json && prometheus) else { throw ValidationError("choose one of --json and --prometheus") }
        guard !(prometheus && `repeat` > 1) else { throw ValidationError("--prometheus prints one exposition; it does not combine with --repeat") }
        if let w = warnMilliseconds, w < 0 { throw ValidationError("--warn-ms must not be negative") }
        if let c = criticalMilliseconds, c < 0 { throw ValidationError("--crit-ms must not be negative") }
        _ = try plan()
    }

    static func main() {
        CommandLineTool.main(Self.self, name: "nfs-check", usageExitCode: CheckStatus.unknown.rawValue)
    }

    func plan() throws -> CheckPlan {
        var plan = CheckPlan(url: url)
        plan.deadline = .milliseconds(Int64(timeout * 1000))
        plan.writeTest = writeTest
        plan.warnMilliseconds = warnMilliseconds
        plan.criticalMilliseconds = criticalMilliseconds
        if let minFree { plan.minimumFree = try CheckArguments.freeSpace(minFree) }
        plan.reads = CommandLineTool.argumentPaths(reads).map { CheckPlan.Read(path: $0) }
        for (index, size) in try CheckArguments.perFile(expectSizes, reads: reads, option: "--expect-size") {
            guard let n = UInt64(size) else { throw ValidationError("--expect-size takes a number of bytes, not \"\(size)\"") }
            plan.reads[index].expectedSize = n
        }
        for (index, hash) in try CheckArguments.perFile(expectHashes, reads: reads, option: "--expect-sha256") {
            guard hash.count == 64, hash.allSatisfy(\.isHexDigit) else {
                throw ValidationError("--expect-sha256 takes 64 hexadecimal digits, not \"\(hash)\"")
            }
            plan.reads[index].expectedSHA256 = hash
        }
        return plan
    }

    func run() throws {
        let plan = try plan()
        var worst = CheckStatus.ok
        for round in 1...`repeat` {
            if round > 1 { Thread.sleep(forTimeInterval: interval) }
            let report = HealthCheck.run(plan, round: round)
            worst = max(worst, report.status)
            if json {
                print(CheckOutput.json(report))
            } else if prometheus {
                print(CheckOutput.prometheus(report), terminator: "")
            } else if `repeat` > 1 {
                print("round \(round): " + CheckOutput.summaryLine(report))
            } else {
                print(CheckOutput.human(report))
            }
            fflush(nil)
        }
        throw ExitCode(worst.rawValue)
    }
}

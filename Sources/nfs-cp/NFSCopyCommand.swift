import ArgumentParser
import Foundation
import LibNFS
import NFSCommandLine

@main
struct NFSCopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nfs-cp",
        abstract: "Copy files and directory trees between local paths and NFS shares, without a kernel mount.",
        usage: "nfs-cp [options] SOURCE... DESTINATION",
        discussion: """
        Each operand is a local path or an nfs:// URL, so local to NFS, NFS to local, NFS to NFS and local to local all work. One source goes to a file or into a directory; several sources go into a directory, as with cp.

        URLs: nfs://server/export/path?nfsport=P&mountport=M&version=3&uid=U. The server may be an IPv6 address in brackets (nfs://[::1]/export). Write any byte of a name as %XX (caf%E9.txt) and a literal % as %25. Arguments: version, nfsport, mountport, uid, gid, autoreconnect, dircache, tcp-syncnt, debug, if; readdir-buffer with libnfs 5 and later; readahead and pagecache with libnfs 4-5; timeo, retrans, rsize and wsize with libnfs 6 and later. Anything else is a usage error.

        Names are copied byte for byte, in every direction, whether or not they are UTF-8; messages show bytes that are not UTF-8 as \\xNN.

        Every file is written under a temporary name (.nfs-cp-*.part) beside its destination and renamed over it only once all of it is written and committed: an error, Ctrl-C or SIGTERM leaves an existing destination as it was and no partial file behind (--inplace turns this off). A second Ctrl-C exits at once, even on a stalled server. A temporary that a run could not remove (the server vanished) is removed by a later run that writes into the same directory, once it is over a day old.

        Repeated copies: -u skips a file whose destination has the same size and modification time (to the second), so use it with -p, which gives copies their source's times; -c compares SHA-256 instead, reading both sides. --exclude and --include take rsync's patterns, matched against paths below each source directory (a/b.txt), in the order given, the first match deciding: a pattern with a / is anchored there, one without matches a name at any depth, a trailing / matches only directories, * and ? stay within a name, ** crosses directories, [a-z] is a set. An excluded directory is not walked, and --delete keeps excluded names. --delete removes destination entries that the source does not have, directory by directory after its copy; it deletes nothing in a directory where any file below it failed. --dry-run prints each step (mkdir, copy, replace, skip, delete) and changes nothing on either side.

        Examples:
          nfs-cp big.iso "nfs://filer/export/isos/?version=3"
          nfs-cp "nfs://filer/export/logs/app.log" ./app.log --verify
          nfs-cp -r -p ./site "nfs://filer/export/www/"
          nfs-cp -r -p -u --delete --exclude '*.tmp' --exclude /cache/ ./site "nfs://filer/export/mirror/"   (a nightly mirror)
          nfs-cp -r -p -u --delete --dry-run ./site "nfs://filer/export/mirror/"   (what it would do)

        Exit status: 0 every file copied; 1 one or more files failed, each named on standard error (and in --json); 2 usage error; 128+N killed by signal N (130 for Ctrl-C).
        """,
        version: "0.1.0, on \(NFSLibrary.description)"
    )

    @Flag(name: .shortAndLong, help: "Copy directories and their contents; symbolic links are copied as links.")
    var recursive = false

    @Flag(name: .shortAndLong, help: "Keep permissions and modification/access times (and ownership when run as root).")
    var preserve = false

    @Flag(name: [.customShort("n"), .customLong("no-clobber")], help: "Skip files whose destination exists (default: overwrite).")
    var noClobber = false

    @Flag(inversion: .prefixedNo, help: "Report progress on standard error: a redrawn line on a terminal, a plain line a second elsewhere (default: on a terminal only).")
    var progress: Bool?

    @Flag(help: "Read each copy back and compare its SHA-256 with the source's; a mismatch fails that file.")
    var verify = false

    @Flag(help: "Write straight into the destination file instead of a temporary file renamed at the end.")
    var inplace = false

    @Flag(name: .shortAndLong, help: "Skip files whose destination has the same size and modification time; meant for use with -p.")
    var update = false

    @Flag(name: .shortAndLong, help: "Skip files whose destination has the same size and SHA-256 (reads both sides).")
    var checksum = false

    @Option(name: .customLong("exclude"), help: ArgumentHelp("Leave out paths that match PATTERN (repeatable; see below).", valueName: "PATTERN"))
    var excludes: [String] = []

    @Option(name: .customLong("include"), help: ArgumentHelp("Keep paths that match PATTERN, before a later --exclude (repeatable).", valueName: "PATTERN"))
    var includes: [String] = []

    @Flag(help: "Print what would be created, copied, replaced, skipped and deleted, and change nothing.")
    var dryRun = false

    @Flag(help: "With -r: remove destination entries the source does not have, except excluded ones; never in a directory where a file below it failed.")
    var delete = false

    @Flag(help: "Leave blocks of zero bytes unwritten, so holes in sparse files stay holes.")
    var sparse = false

    @Option(name: .shortAndLong, help: "Keep N files in flight at once, over one mount per side, at most 4 of them over 256 KiB (default 64).")
    var jobs = 64

    @Flag(help: "Print one JSON summary on standard output at the end (files, bytes, seconds, failures).")
    var json = false

    @Flag(name: .shortAndLong, help: "Name each file as it is copied.")
    var verbose = false

    @Option(help: "Seconds any single NFS operation may take before it fails, up to 86400; libnfs counts whole seconds, so a fraction is rounded up.")
    var timeout: Double = 30

    @Option(help: "User id presented to NFS servers.")
    var uid: Int?

    @Option(help: "Group id presented to NFS servers.")
    var gid: Int?

    @Argument(help: ArgumentHelp("Sources, then the destination: local paths or nfs:// URLs.", valueName: "operand"))
    var operands: [String] = []

    func validate() throws {
        guard operands.count >= 2 else { throw ValidationError("need at least one SOURCE and a DESTINATION") }
        guard jobs >= 1 && jobs <= 1024 else { throw ValidationError("--jobs takes a number from 1 to 1024") }
        guard !delete || recursive else { throw ValidationError("--delete needs -r") }
        guard timeout > 0 && timeout <= 86_400 else {
            throw ValidationError("--timeout takes a number of seconds from 1 to 86400 (fractions are rounded up)")
        }
        for operand in CommandLineTool.argumentBytes(operands) {
            do { _ = try Operand(bytes: operand) } catch { throw ValidationError("\(error)") }
        }
    }

    /// The --include and --exclude rules in the order given (the first match decides),
    /// from the raw argument bytes, so patterns can name bytes that are not UTF-8.
    static func filter(_ arguments: [String]) throws -> PathFilter {
        var filter = PathFilter()
        let raw = CommandLineTool.argumentBytes(Array(arguments.dropFirst()))
        var i = 0
        while i < raw.count {
            let argument = raw[i]
            if argument == Array("--".utf8) { break }
            for (option, action) in [("--exclude", PathFilter.Action.exclude), ("--include", .include)] {
                let name = Array(option.utf8)
                if argument == name, i + 1 < raw.count {
                    try filter.add(action, pattern: raw[i + 1])
                    i += 1
                } else if argument.starts(with: name + [UInt8(ascii: "=")]) {
                    try filter.add(action, pattern: Array(argument.dropFirst(name.count + 1)))
                }
            }
            i += 1
        }
        return filter
    }

    static func main() async {
        // Before any other thread exists, so that every thread inherits the blocked signals.
        Interrupt.install()
        Platform.keepFreedMemory()
        await CommandLineTool.main(Self.self, name: "nfs-cp", usageExitCode: 2)
    }

    func run() async throws {
        var options = CopyOptions()
        options.recursive = recursive
        options.preserve = preserve
        options.noClobber = noClobber
        options.verify = verify
        options.inplace = inplace
        options.update = update
        options.checksum = checksum
        options.dryRun = dryRun
        options.delete = delete
        options.sparse = sparse
        do { options.filter = try Self.filter(CommandLine.arguments) } catch let error as CopyUsageError {
            CommandLineTool.printError("nfs-cp: \(error)")
            throw ExitCode(2)
        }
        options.jobs = jobs
        options.nfs.timeout = .milliseconds(Int64((timeout * 1000).rounded(.up)))
        options.nfs.uid = uid
        options.nfs.gid = gid
        let progressLine = ProgressLine(enabled: progress ?? Terminal.standardErrorIsInteractive)
        let copier = Copier(options: options, progress: progressLine) { line in
            progressLine.pauseWhile { CommandLineTool.printError("nfs-cp: \(line)") }
        }
        let parsed = try CommandLineTool.argumentBytes(operands).map(Operand.init(bytes:))
        let summary: CopySummary
        do {
            summary = try await copier.run(sources: Array(parsed.dropLast()), destination: parsed.last!, verbose: verbose)
        } catch let error as CopyUsageError {
            CommandLineTool.printError("nfs-cp: \(error)")
            throw ExitCode(2)
        }
        if json { CommandLineTool.printJSON(summary) }
        else if let plan = summary.plan { for step in plan { print(step.line) } }
        if let signal = Interrupt.signal { throw ExitCode(Interrupt.exitStatus(for: signal)) }
        if !summary.failures.isEmpty { throw ExitCode(1) }
    }
}

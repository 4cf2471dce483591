import ArgumentParser
import Foundation
import LibNFS
import NFSCommandLine

@main
struct NFSCopyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nfs-cp",
        abstract: "Copy files and directory trees between local paths and NFS shares, without a kernel mount.",
        usage: "nfs-cp [options] SOURCE... DESTINATION",
        discussion: """
        Each operand is a local path or an nfs:// URL, so local to NFS, NFS to local, NFS to NFS and local to local all work. One source goes to a file or into a directory; several sources go into a directory, as with cp.

        URLs: nfs://server/export/path?nfsport=P&mountport=M&version=3&uid=U. The server may be an IPv6 address in brackets (nfs://[::1]/export). Write any byte of a name as %XX (caf%E9.txt) and a literal % as %25. Arguments: version, nfsport, mountport, uid, gid, autoreconnect, dircache, readdir-buffer, tcp-syncnt, debug, if; readahead and pagecache with libnfs 4-5; timeo, retrans, rsize and wsize with libnfs 6 and later. Anything else is a usage error.

        Names are copied byte for byte, in every direction, whether or not they are UTF-8; messages show bytes that are not UTF-8 as \\xNN.

        Every file is written under a temporary name (.nfs-cp-*.part) beside its destination and renamed over it only once all of it is written and committed: an error, Ctrl-C or SIGTERM leaves an existing destination as it was and no partial file behind (--inplace turns this off). A second Ctrl-C exits at once, even on a stalled server. A temporary that a run could not remove (the server vanished) is removed by a later run that writes into the same directory, once it is over a day old.

        Examples:
          nfs-cp big.iso "nfs://filer/export/isos/?version=3"
          nfs-cp "nfs://filer/export/logs/app.log" ./app.log --verify
          nfs-cp -r -p ./site "nfs://filer/export/www/"

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

    @Option(name: .shortAndLong, help: "Keep N files in flight at once, over one mount per side (default 16).")
    var jobs = 16

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
        guard jobs >= 1 && jobs <= 64 else { throw ValidationError("--jobs takes a number from 1 to 64") }
        guard timeout > 0 && timeout <= 86_400 else {
            throw ValidationError("--timeout takes a number of seconds from 1 to 86400 (fractions are rounded up)")
        }
        for operand in CommandLineTool.argumentBytes(operands) {
            do { _ = try Operand(bytes: operand) } catch { throw ValidationError("\(error)") }
        }
    }

    static func main() {
        CommandLineTool.main(Self.self, name: "nfs-cp", usageExitCode: 2)
    }

    func run() throws {
        Interrupt.install()
        var options = CopyOptions()
        options.recursive = recursive
        options.preserve = preserve
        options.noClobber = noClobber
        options.verify = verify
        options.inplace = inplace
        options.jobs = jobs
        options.nfs = NFSOptions(timeout: .milliseconds(Int64((timeout * 1000).rounded(.up))), uid: uid, gid: gid)
        let progressLine = ProgressLine(enabled: progress ?? Terminal.standardErrorIsInteractive)
        let copier = Copier(options: options, progress: progressLine) { line in
            progressLine.pauseWhile { CommandLineTool.printError("nfs-cp: \(line)") }
        }
        let parsed = try CommandLineTool.argumentBytes(operands).map(Operand.init(bytes:))
        let summary: CopySummary
        do {
            summary = try copier.run(sources: Array(parsed.dropLast()), destination: parsed.last!, verbose: verbose)
        } catch let error as CopyUsageError {
            CommandLineTool.printError("nfs-cp: \(error)")
            throw ExitCode(2)
        }
        if json { CommandLineTool.printJSON(summary) }
        if let signal = Interrupt.signal { throw ExitCode(Interrupt.exitStatus(for: signal)) }
        if !summary.failures.isEmpty { throw ExitCode(1) }
    }
}

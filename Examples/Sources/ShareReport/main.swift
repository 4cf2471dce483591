// Mounts a share, lists it, reads a file and writes a report beside it.
//
//   swift run ShareReport "nfs://server/export?version=3" path/in/share.txt
import LibNFS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    print("usage: ShareReport NFS-URL FILE")
    exit(2)
}

do {
    // Mount; every call below is bounded by the timeout.
    let nfs = try NFSContext(url: arguments[1], options: NFSOptions(timeout: .seconds(10)))
    defer { try? nfs.close() }

    // List the share with attributes.
    for entry in try nfs.scandir("/").sorted(by: { $0.name.string < $1.name.string }) {
        print("\(entry.stat.isDirectory ? "d" : "-") \(entry.stat.size)\t\(entry.name)")
    }

    // Read a text file line by line.
    let lines = try nfs.withFile(arguments[2]) { try $0.lines() }
    print("\(arguments[2]): \(lines.count) lines, first: \(lines.first ?? "")")

    // Write a file safely: write under a temporary name, commit, then rename over the final name.
    let report = arguments[2] + ".report"
    try nfs.withFile(report + ".tmp", mode: "w") { file in
        try file.write("lines=\(lines.count)\n")
        try file.fsync()
    }
    try nfs.rename(report + ".tmp", to: report)
    print("wrote \(report)")
} catch let error as NFSError {
    // One line naming the operation, the path and the reason.
    print("ShareReport: \(error)")
    exit(error.isTimeout ? 3 : 1)
}

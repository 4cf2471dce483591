import Foundation
import LibNFS

// Usage: EngineBench sync URL DIR   — sync figures (DIR: a directory on the share, for scratch files)
//        EngineBench async URL DIR  — 200 stats sequential vs concurrent, 64 MiB readAll
// Prints one "name seconds" line per figure, the median of 3 runs.
// NODELAY=0 in the environment mounts with NFSOptions.noDelay off (Nagle's algorithm left on).

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

@MainActor
func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

func report(_ name: String, _ runs: [Double]) {
    let sorted = runs.sorted()
    print(name, String(format: "%.3f", sorted[sorted.count / 2]))
}

let arguments = CommandLine.arguments
guard arguments.count == 4 else {
    print("usage: EngineBench sync|async URL DIR")
    exit(2)
}
let (mode, url, dir) = (arguments[1], arguments[2], arguments[3])
var options = NFSOptions()
options.noDelay = ProcessInfo.processInfo.environment["NODELAY"] != "0"
let nfs = try NFSContext(url: url, options: options)
let big = dir + "/engine-big.bin"
let chunk = [UInt8](repeating: 0x5A, count: 1 << 20)

if mode == "sync" {
    if try !nfs.exists(big) || nfs.stat(big).size != 256 << 20 {
        try nfs.withFile(big, mode: "w") { file in for _ in 0..<256 { try file.write(chunk) } }
    }
    report("stat-10000", try (0..<3).map { _ in try seconds { for _ in 0..<10_000 { _ = try nfs.stat(big) } } })
    report("write-1byte-100000", try (0..<3).map { _ in
        try seconds { try nfs.withFile(dir + "/engine-small.bin", mode: "w") { file in for _ in 0..<100_000 { try file.write([7]) } } }
    })
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    report("read-into-256MiB", try (0..<3).map { _ in
        try seconds { try nfs.withFile(big) { file in
            try buffer.withUnsafeMutableBytes { while try file.read(into: $0) > 0 {} }
        } }
    })
    report("read-1MiB-256MiB", try (0..<3).map { _ in
        try seconds { try nfs.withFile(big) { file in while try !file.read(1 << 20).isEmpty {} } }
    })
    report("readAll-256MiB", try (0..<3).map { _ in
        try seconds { _ = try nfs.withFile(big) { try $0.readAll() } }
    })
} else {
    let medium = dir + "/engine-64.bin"
    if try !nfs.exists(medium) || nfs.stat(medium).size != 64 << 20 {
        try nfs.withFile(medium, mode: "w") { file in for _ in 0..<64 { try file.write(chunk) } }
    }
    report("stat-200-sequential", try await runs3 {
        try await seconds { for _ in 0..<200 { _ = try await nfs.stat(medium) } }
    })
    report("stat-200-concurrent", try await runs3 {
        try await seconds {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<200 { group.addTask { _ = try await nfs.stat(medium) } }
                try await group.waitForAll()
            }
        }
    })
    report("readAll-64MiB", try await runs3 {
        try await seconds { _ = try await nfs.withFile(medium) { try await $0.readAll() } }
    })
}
try nfs.close()

@MainActor
func runs3(_ body: () async throws -> Double) async rethrows -> [Double] {
    var result: [Double] = []
    for _ in 0..<3 { result.append(try await body()) }
    return result
}

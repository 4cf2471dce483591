import Foundation
import LibNFS
import NFSTestSupport
import Testing

@Suite("Concurrency: one context shared by many tasks", TestServer.required)
struct ConcurrencyTests {
    @Test("8 concurrent tasks doing mixed writes, reads and stats on one context get correct bytes")
    func mixedWorkload() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("conc")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        let shared = randomBytes(1 << 20)
        try scratch.writeLocal("shared", shared)
        let sharedHandle = try await nfs.open(scratch.path("shared"))
        defer { try? sharedHandle.close() }

        let contents = (0..<8).map { _ in randomBytes(Int.random(in: 100_000...600_000)) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                let bytes = contents[task]
                group.addTask {
                    let path = scratch.path("w\(task)")
                    for round in 0..<5 {
                        try nfs.withFile(path, mode: "w") { file in
                            // Odd-sized writes so that buffers of different tasks interleave mid-RPC.
                            var offset = 0
                            while offset < bytes.count {
                                let end = min(offset + 7919 * (task + 1), bytes.count)
                                try file.write(bytes[offset..<end])
                                offset = end
                            }
                        }
                        #expect(try nfs.stat(path).size == UInt64(bytes.count))
                        #expect(try nfs.withFile(path) { try $0.readAll() } == bytes, "task \(task) round \(round)")
                        let offset = UInt64((task * 131_071 + round * 65_537) % (shared.count - 5000))
                        #expect(try sharedHandle.pread(count: 5000, offset: offset) == Array(shared[Int(offset)..<Int(offset) + 5000]))
                        _ = try nfs.listdir(scratch.path)
                    }
                }
            }
            try await group.waitForAll()
        }
        for task in 0..<8 {
            #expect(try scratch.readLocal("w\(task)") == contents[task], "on disk, task \(task)")
        }
    }

    @Test("one handle read sequentially from 8 threads hands out every byte exactly once")
    func sharedHandleReads() async throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("conc-read")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        // Each 4-byte record holds its own index, so any torn or repeated read shows.
        let count = 200_000
        var bytes = [UInt8](); bytes.reserveCapacity(count * 4)
        for i in 0..<UInt32(count) { withUnsafeBytes(of: i.littleEndian) { bytes += $0 } }
        try scratch.writeLocal("records", bytes)
        let file = try await nfs.open(scratch.path("records"))
        defer { try? file.close() }
        let seen = try await withThrowingTaskGroup(of: [UInt32].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var mine: [UInt32] = []
                    while true {
                        let record = try file.read(4 * 97)
                        if record.isEmpty { return mine }
                        #expect(record.count % 4 == 0)
                        for k in stride(from: 0, to: record.count, by: 4) {
                            mine.append(UInt32(record[k]) | UInt32(record[k + 1]) << 8 | UInt32(record[k + 2]) << 16 | UInt32(record[k + 3]) << 24)
                        }
                    }
                }
            }
            var all: [UInt32] = []
            for try await part in group { all += part }
            return all
        }
        // Every record exactly once: the sorted records are exactly 0..<count.
        #expect(seen.count == count)
        #expect(seen.sorted() == Array(0..<UInt32(count)))
    }
}

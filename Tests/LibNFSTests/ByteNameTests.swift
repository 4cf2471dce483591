import Foundation
import LibNFS
import NFSTestSupport
import SystemPackage
import Testing

/// Names that are not UTF-8 (NFSv3 names are opaque bytes), checked against
/// the export directory read with the platform's calls.
@Suite("Byte-exact names", TestServer.required)
struct ByteNameTests {
    /// Latin-1 `café.txt`, a name with a newline, a 255-byte name ending in a lone 0xFF.
    static let names: [[UInt8]] = [
        Array("caf".utf8) + [0xE9] + Array(".txt".utf8),
        Array("two\nlines".utf8),
        [UInt8](repeating: UInt8(ascii: "n"), count: 254) + [0xFF],
    ]

    @Test("names that are not UTF-8 are listed exactly and can be stat'ed, read, renamed and removed")
    func roundTrip() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("bytes")
        defer { scratch.cleanUp() }
        for (i, name) in Self.names.enumerated() {
            try ByteName.writeLocal(scratch.localPath.appending(ByteName.component(name)), [UInt8](repeating: UInt8(i), count: i + 1))
        }
        let nfs = try server.mount()
        defer { try? nfs.close() }

        let listed = try nfs.listdir(scratch.path)
        #expect(Set(listed.map(ByteName.bytes)) == Set(Self.names))
        for name in listed {
            let path = scratch.filePath.appending(name)
            let i = try #require(Self.names.firstIndex(of: ByteName.bytes(name)))
            #expect(try nfs.stat(path).size == UInt64(i + 1))
            #expect(try nfs.withFile(path) { try $0.readAll() } == [UInt8](repeating: UInt8(i), count: i + 1))
        }
        let scanned = try nfs.scandir(scratch.path)
        #expect(Set(scanned.map { ByteName.bytes($0.name) }) == Set(Self.names))

        // Rename one to another name that is not UTF-8, remove another: the disk shows exactly that.
        let renamed = Array("na".utf8) + [0xEF] + Array("ve".utf8)
        try nfs.rename(scratch.filePath.appending(ByteName.component(Self.names[0])),
                       to: scratch.filePath.appending(ByteName.component(renamed)))
        try nfs.unlink(scratch.filePath.appending(ByteName.component(Self.names[1])))
        #expect(ByteName.listLocal(scratch.localPath) == [renamed, Self.names[2]])
        #expect(ByteName.readLocal(scratch.localPath.appending(ByteName.component(renamed))) == [0])
    }

    @Test("files and directories created under such names arrive on disk with exactly those bytes, and walk visits them")
    func createAndWalk() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("bytes-new")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        let directory = ByteName.component([0x64, 0xFF, 0xFE])
        let file = ByteName.component(Self.names[0])
        try nfs.mkdir(scratch.filePath.appending(directory))
        try nfs.withFile(scratch.filePath.appending(directory).appending(file), mode: "w") { try $0.write([7, 8, 9]) }
        try nfs.symlink(FilePath(root: nil, [file]), at: scratch.filePath.appending(directory).appending("link"))

        #expect(ByteName.listLocal(scratch.localPath) == [[0x64, 0xFF, 0xFE]])
        let onDisk = scratch.localPath.appending(directory)
        #expect(ByteName.listLocal(onDisk) == [Self.names[0], Array("link".utf8)])
        #expect(ByteName.readLocal(onDisk.appending(file)) == [7, 8, 9])
        #expect(try nfs.readlink(scratch.filePath.appending(directory).appending("link")) == FilePath(root: nil, [file]))

        let walk = try nfs.walk(scratch.path)
        #expect(walk.map(\.path) == [scratch.filePath, scratch.filePath.appending(directory)])
        #expect(walk.first?.directories == [directory])
        #expect(Set(walk.last?.files ?? []) == [file, "link"])
        try nfs.removeTree(scratch.filePath.appending(directory))
        #expect(ByteName.listLocal(scratch.localPath).isEmpty)
    }

    @Test("an error about such a name keeps its bytes and shows them escaped, never replaced")
    func errorsEscape() throws {
        let server = try TestServer.require()
        let scratch = try server.scratch("bytes-err")
        defer { scratch.cleanUp() }
        let nfs = try server.mount()
        defer { try? nfs.close() }
        let missing = scratch.filePath.appending(ByteName.component(Self.names[0]))
        do {
            _ = try nfs.stat(missing)
            Issue.record("stat of a missing file succeeded")
        } catch let error as NFSError {
            #expect(error.code == .noSuchFileOrDirectory)
            #expect(error.path == missing)
            #expect(error.description.contains("\(scratch.path)/caf\\xE9.txt"), "\(error)")
            #expect(!error.description.contains("\u{FFFD}"), "\(error)")
        }
    }

    @Test("escapedDescription keeps UTF-8 and escapes invalid bytes, controls and backslashes")
    func escaping() {
        #expect(FilePath("/ünï/日本.txt").escapedDescription == "/ünï/日本.txt")
        #expect(FilePath(root: "/", [ByteName.component(Self.names[0])]).escapedDescription == "/caf\\xE9.txt")
        #expect(ByteName.component(Array("a\nb\tc\\d".utf8) + [0x7F]).escapedDescription == "a\\nb\\tc\\\\d\\x7F")
        #expect(ByteName.component([0xE6, 0x97]).escapedDescription == "\\xE6\\x97")
        #expect(ByteName.component([0xC2, 0x85]).escapedDescription == "\\xC2\\x85")
    }
}

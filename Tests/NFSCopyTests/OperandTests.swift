import Foundation
import LibNFS
import NFSCommandLine
import NFSTestSupport
import Testing

/// nfs-cp's operands: random bytes never crash the parser, and the tools
/// refuse malformed URL arguments as usage errors naming them.
@Suite("nfs-cp operands")
struct OperandTests {
    @Test("random byte strings are a local path, a URL, or a clear error")
    func randomBytes() {
        var state: UInt64 = 99
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            return z ^ (z >> 27)
        }
        let pieces: [[UInt8]] = [Array("nfs://".utf8), Array("h".utf8), Array("/x".utf8), Array("?uid=".utf8),
                                 Array("://".utf8), [0xE9], [0xFF, 0xFE], [0], Array("%".utf8), Array("[::1]".utf8)]
        for _ in 0..<5000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int(next() % 6) {
                bytes += next() % 2 == 0 ? pieces[Int(next() % UInt64(pieces.count))] : [UInt8(truncatingIfNeeded: next())]
            }
            do {
                switch try Operand(bytes: bytes) {
                case .local(let path): #expect(!bytes.isEmpty && !path.isEmpty || bytes == [0x2F])
                case .nfs(let url): #expect(url.description.hasPrefix("nfs://"))
                }
            } catch let error as NFSError {
                #expect(error.code == .invalidArgument && !(error.detail ?? "").isEmpty, "\(error)")
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
    }

    @Test("malformed URL arguments are usage errors naming the argument: exit 2 for nfs-cp, 3 for nfs-check",
          arguments: [("version=9", "version"), ("nfsport=abc", "nfsport"), ("nfsport=70000", "nfsport"), ("flag", "flag")])
    func usageErrors(query: String, named: String) throws {
        let url = "nfs://127.0.0.1/export/x?\(query)"
        let cp = try Tool.run("nfs-cp", ["/etc/hostname", url])
        #expect(cp.status == 2 && cp.stderr.contains("'\(named)'"), "\(cp.status) \(cp.stderr)")
        let check = try Tool.run("nfs-check", [url])
        #expect(check.status == 3 && (check.stderr + check.stdout).contains("'\(named)'"), "\(check.status) \(check.stderr)")
    }

    @Test("--help reads as written at 80 columns: no line over 80, no paragraph broken mid-sentence",
          arguments: ["nfs-cp", "nfs-check"])
    func help(tool: String) throws {
        var environment = ProcessInfo.processInfo.environment
        environment["COLUMNS"] = "80"
        let r = try Tool.run(tool, ["--help"], environment: environment)
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        for line in lines { #expect(line.count <= 80, "\(line)") }
        // Within a prose paragraph only the last line may be short: a short line followed by
        // more of the same paragraph is a hard line break that the parser wrapped again.
        for (line, next) in zip(lines, lines.dropFirst()) where !line.isEmpty && !next.isEmpty
            && !line.hasPrefix(" ") && !next.hasPrefix(" ") && !line.hasSuffix(":") {
            #expect(line.count >= 60, "broken mid-sentence: \"\(line)\" then \"\(next)\"")
        }
    }
}

import LibNFS
import SystemPackage
import NFSTestSupport
import Testing

/// SplitMix64: a fixed seed makes every failure reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Thousands of random and mutated URLs: every one is either parsed into a URL
/// that prints back to itself, or refused with EINVAL and a reason; none crashes.
@Suite("NFS URL parser under random input")
struct URLFuzzTests {
    static let valid = [
        "nfs://filer/export/data?version=3&uid=1000",
        "nfs://127.0.0.1/srv/share/?nfsport=2049&mountport=20048&version=3",
        "nfs://[::1]/export/caf%E9.txt?gid=5&dircache=0",
        "nfs://host.example/a/b/c?readdir-buffer=8192,65536&autoreconnect=-1",
    ]
    static let alphabet: [Character] = Array("nfs:/?&=%[]@#. -_09aZ\u{0}\u{7F}éü日🚀\\\n\t") + ["3", "4", "x", "F", "E"]

    static func check(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let url = try NFSURL(text)
            #expect(url.description == text, sourceLocation: sourceLocation)
            #expect(try NFSURL(url.description) == url, sourceLocation: sourceLocation)
            _ = url.filePath
            _ = url.deletingLastComponent
        } catch let error as NFSError {
            #expect(error.code == .invalidArgument, "\(error)", sourceLocation: sourceLocation)
            #expect(error.operation == "parse URL" && !(error.detail ?? "").isEmpty, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error) for \(text.debugDescription)", sourceLocation: sourceLocation)
        }
    }

    @Test("random strings are parsed or refused with a reason")
    func randomStrings() {
        var rng = SeededGenerator(state: 20261122)
        for _ in 0..<5000 {
            let length = Int.random(in: 0...40, using: &rng)
            let body = String((0..<length).map { _ in Self.alphabet.randomElement(using: &rng)! })
            Self.check(Bool.random(using: &rng) ? "nfs://" + body : body)
        }
    }

    @Test("mutations of valid URLs are parsed or refused with a reason")
    func mutations() {
        var rng = SeededGenerator(state: 7)
        for _ in 0..<5000 {
            var characters = Array(Self.valid.randomElement(using: &rng)!)
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let i = Int.random(in: 0..<characters.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: characters.remove(at: i)
                case 1: characters.insert(Self.alphabet.randomElement(using: &rng)!, at: i)
                default: characters[i] = Self.alphabet.randomElement(using: &rng)!
                }
                if characters.isEmpty { break }
            }
            Self.check(String(characters))
        }
    }

    @Test("malformed arguments are refused naming the argument", arguments: [
        ("nfs://h/x?version=9", "version"), ("nfs://h/x?nfsport=abc", "nfsport"), ("nfs://h/x?nfsport=70000", "nfsport"),
        ("nfs://h/x?mountport=0", "mountport"), ("nfs://h/x?uid=-1", "uid"), ("nfs://h/x?bogus=1", "bogus"),
        ("nfs://h/x?uid=1&uid=2", "uid"), ("nfs://h/x?version", "version"), ("nfs://h/100%.txt", "%25"),
        ("nfs://[::1/x", "IPv6"), ("nfs://h:2049/x", "nfsport"),
    ])
    func malformed(url: String, named: String) {
        #expect { _ = try NFSURL(url) } throws: { error in
            guard let error = error as? NFSError else { return false }
            return error.code == .invalidArgument && error.description.contains(named)
        }
    }

    @Test("%XX escapes name any byte of the path")
    func escapes() throws {
        let url = try NFSURL("nfs://h/export/caf%E9%20x%25.txt")
        #expect(ByteName.bytes(of: url.filePath) == Array("/export/caf".utf8) + [0xE9] + Array(" x%.txt".utf8))
        #expect(url.appending(ByteName.component([0xFF, 0x3F])).path == "/export/caf%E9%20x%25.txt/%FF%3F")
    }
}

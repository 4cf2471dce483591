import SystemPackage

/// A parsed `nfs://server/path?arg=val&…` URL.
///
/// - The server is a host name, an IPv4 address, or an IPv6 address in
///   brackets (`nfs://[::1]/export`). A `:port` after the host is not
///   accepted: use `nfsport=` and `mountport=`.
/// - The path may hold `%XX` escapes for any byte (`caf%E9.txt` names the
///   Latin-1 `café.txt`); a `%` not followed by two hex digits is an error,
///   so write `%25` for a literal `%`. libnfs 4.x takes escapes literally and
///   5.x and later decode the whole URL, so LibNFS decodes the path itself and
///   hands libnfs the bytes.
/// - Every query argument is checked before libnfs sees it (libnfs ignores
///   unknown arguments and reads malformed numbers as 0): see
///   ``acceptedArguments``. Anything else is an `EINVAL` naming the argument.
public struct NFSURL: Sendable, Hashable, CustomStringConvertible {
    /// The server as written: a host name, an address, or `[v6-address]`.
    public var server: String
    /// The absolute path on the server, as written (`/export/dir/file`, escapes kept).
    public var path: String
    /// The query string without its `?`, such as `nfsport=2049&version=3`; empty when there is none.
    public var query: String

    /// The arguments a URL may carry, and the values each takes.
    ///
    /// `version` 3 or 4; `nfsport`, `mountport` 1-65535; `uid`, `gid`,
    /// `tcp-syncnt`, `debug`, `autoreconnect` (-1 for ever) and, with libnfs 5.0
    /// and later, `readdir-buffer` (`N` or `N,M`) numbers; `dircache`, `auto-traverse-mounts` 0 or 1;
    /// `if` an interface name. With libnfs 4.x-5.x also `readahead` and
    /// `pagecache` (numbers); with 6.0 and later also `timeo` (deciseconds, at
    /// least 100), `retrans`, `rsize` and `wsize` (numbers). An argument the
    /// running libnfs does not know is refused, not ignored.
    public static let acceptedArguments: [String] = Argument.all.map(\.name)

    /// Parses `string`, throwing an ``NFSError`` with code `EINVAL` that says what is wrong.
    public init(_ string: String) throws {
        func invalid(_ why: String) -> NFSError {
            NFSError(code: .invalidArgument, operation: "parse URL", url: string.isEmpty ? "\"\"" : string, detail: why)
        }
        guard !string.isEmpty else { throw invalid("the URL is empty") }
        guard string.hasPrefix("nfs://") else { throw invalid("the URL must start with nfs://") }
        var rest = Substring(string.dropFirst("nfs://".count))
        var query = ""
        if let q = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: q)...])
            rest = rest[..<q]
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let server = String(rest[..<slash])
        guard !server.isEmpty else { throw invalid("the URL names no server") }
        if server.hasPrefix("[") {
            guard server.hasSuffix("]"), server.count > 2,
                  server.dropFirst().dropLast().allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw invalid("an IPv6 address must be written in brackets, such as nfs://[::1]/export")
            }
        } else if server.contains(":") {
            throw invalid("a port in the host is not supported; use ?nfsport=N&mountport=M "
                          + "(an IPv6 address goes in brackets: nfs://[::1]/export)")
        } else if let bad = server.first(where: { !($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") }) {
            throw invalid("the host contains '\(bad)'")
        }
        let path = String(rest[slash...])
        guard !path.isEmpty else { throw invalid("the URL names no export path") }
        do { _ = try Self.decode(path) } catch let why as URLProblem { throw invalid(why.text) }
        for problem in Self.problems(inQuery: query) { throw invalid(problem) }
        self.server = server
        self.path = path
        self.query = query
    }

    /// Parses a URL given as bytes, such as a command-line argument, which need
    /// not be UTF-8: bytes that are not stand for themselves, as `%XX` escapes would.
    public init(bytes: [UInt8]) throws {
        if let text = String(validating: bytes, as: UTF8.self) {
            try self.init(text)
        } else {
            try self.init(Self.escape(bytes) { $0 < 0x80 })
        }
    }

    /// Creates a URL from its parts; `path` is as written (escapes are decoded by ``filePath``).
    public init(server: String, path: String, query: String = "") {
        self.server = server
        self.path = path.hasPrefix("/") ? path : "/" + path
        self.query = query
    }

    /// The URL as text.
    public var description: String { "nfs://\(server)\(path)\(query.isEmpty ? "" : "?" + query)" }

    /// The path's bytes, with `%XX` escapes decoded: what the server is asked for.
    public var filePath: FilePath {
        PathText.path((try? Self.decode(path)) ?? Array(path.utf8))
    }

    /// The host to connect to: ``server`` without the brackets of an IPv6 address.
    public var host: String {
        server.hasPrefix("[") && server.hasSuffix("]") ? String(server.dropFirst().dropLast()) : server
    }

    /// The last path component (`file` in `/export/dir/file`), as written, empty for `/`.
    public var lastComponent: String {
        path.split(separator: "/").last.map(String.init) ?? ""
    }

    /// The URL of the parent directory, with the same query.
    public var deletingLastComponent: NFSURL {
        var parts = path.split(separator: "/")
        if !parts.isEmpty { parts.removeLast() }
        return NFSURL(server: server, path: "/" + parts.joined(separator: "/"), query: query)
    }

    /// The URL of `component` (written as in a URL) inside this one, with the same query.
    public func appending(_ component: String) -> NFSURL {
        let base = path.hasSuffix("/") ? path : path + "/"
        let tail = component.hasPrefix("/") ? String(component.dropFirst()) : component
        return NFSURL(server: server, path: base + tail, query: query)
    }

    /// The URL of the name `component` (any bytes) inside this one: bytes that
    /// a URL cannot hold as they are become `%XX` escapes.
    public func appending(_ component: FilePath.Component) -> NFSURL {
        // Escapes `%`, `?`, `#`, spaces, controls and every byte above 0x7F.
        appending(Self.escape(PathText.bytes(of: component.nfsFilePath)) { byte in
            byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "%") && byte != UInt8(ascii: "?") && byte != UInt8(ascii: "#")
        })
    }

    /// The value of the query argument `name`, if present.
    public func argument(_ name: String) -> String? {
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.first.map(String.init) == name { return kv.count > 1 ? String(kv[1]) : "" }
        }
        return nil
    }

    // MARK: Escapes

    private struct URLProblem: Error { let text: String }

    private static func decode(_ text: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard utf8.count >= 2, let high = hexValue(utf8[utf8.startIndex]),
                  let low = hexValue(utf8[utf8.startIndex + 1]) else {
                throw URLProblem(text: "'%' in the path must start an escape of two hex digits (write %25 for '%')")
            }
            utf8 = utf8.dropFirst(2)
            let decoded = high << 4 | low
            guard decoded != 0 else { throw URLProblem(text: "the path holds %00, which no file name can contain") }
            bytes.append(decoded)
        }
        return bytes
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// `bytes` as URL text: bytes for which `keep` is true as they are, the rest as `%XX`.
    private static func escape(_ bytes: [UInt8], keeping keep: (UInt8) -> Bool) -> String {
        var text = ""
        for byte in bytes {
            if keep(byte) { text.unicodeScalars.append(Unicode.Scalar(byte)) } else { text += "%" + PathText.hexDigits(byte) }
        }
        return text
    }

    // MARK: Arguments

    private struct Argument {
        let name: String
        /// nil: every API; otherwise the libnfs API version (1: 4.x-5.x, 2: 6.0+) that knows it.
        let api: Int?
        /// Whether the running libnfs knows it, where the API version alone does not tell.
        var available: @Sendable () -> Bool = { true }
        let check: @Sendable (String) -> String?

        static func number(_ range: ClosedRange<Int>) -> @Sendable (String) -> String? {
            { value in
                guard let n = Int(value), range.contains(n) else {
                    return "takes a whole number from \(range.lowerBound) to \(range.upperBound)"
                }
                return nil
            }
        }

        static let all: [Argument] = [
            Argument(name: "version", api: nil) { ["3", "4"].contains($0) ? nil : "takes 3 or 4" },
            Argument(name: "nfsport", api: nil, check: number(1...65535)),
            Argument(name: "mountport", api: nil, check: number(1...65535)),
            Argument(name: "uid", api: nil, check: number(0...Int(Int32.max))),
            Argument(name: "gid", api: nil, check: number(0...Int(Int32.max))),
            Argument(name: "tcp-syncnt", api: nil, check: number(0...255)),
            Argument(name: "debug", api: nil, check: number(0...10)),
            Argument(name: "autoreconnect", api: nil, check: number(-1...Int(Int32.max))),
            Argument(name: "dircache", api: nil, check: number(0...1)),
            Argument(name: "auto-traverse-mounts", api: nil, check: number(0...1)),
            Argument(name: "if", api: nil) { value in
                !value.isEmpty && value.utf8.count < 16 && value.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "/" })
                    ? nil : "takes a network interface name"
            },
            Argument(name: "readdir-buffer", api: nil, available: { Syscalls.hasReaddirBufferSetter }) { value in
                let parts = value.split(separator: ",", omittingEmptySubsequences: false)
                return (1...2).contains(parts.count) && parts.allSatisfy({ UInt32($0).map { $0 > 0 } ?? false })
                    ? nil : "takes a size in bytes, or two separated by a comma"
            },
            Argument(name: "readahead", api: 1, check: number(0...Int(Int32.max))),
            Argument(name: "pagecache", api: 1, check: number(0...Int(Int32.max))),
            Argument(name: "timeo", api: 2, check: number(100...Int(Int32.max / 100))),
            Argument(name: "retrans", api: 2, check: number(0...Int(Int32.max))),
            Argument(name: "rsize", api: 2, check: number(1...Int(Int32.max))),
            Argument(name: "wsize", api: 2, check: number(1...Int(Int32.max))),
        ]
    }

    private static func problems(inQuery query: String) -> [String] {
        var seen: Set<String> = []
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(kv[0])
            guard let argument = Argument.all.first(where: { $0.name == name }) else {
                return ["unknown URL argument '\(name)' (accepted: \(acceptedArguments.joined(separator: ", ")))"]
            }
            if argument.api.map({ $0 != Syscalls.apiVersion }) ?? false || !argument.available() {
                return ["URL argument '\(name)' is not supported by \(NFSLibrary.description)"]
            }
            guard kv.count == 2 else { return ["URL argument '\(name)' needs a value ('\(name)=…')"] }
            if let why = argument.check(String(kv[1])) { return ["URL argument '\(name)' \(why), not '\(kv[1])'"] }
            guard seen.insert(name).inserted else { return ["URL argument '\(name)' is given twice"] }
        }
        return []
    }
}

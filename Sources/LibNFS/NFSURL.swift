/// A parsed `nfs://server/path?arg=val&…` URL.
///
/// libnfs 4.0.0 accepts no `:port` in the host (use `nfsport=`/`mountport=`),
/// no `%`-escapes, and silently ignores unknown arguments; this type rejects
/// what libnfs would misread, with a message saying why.
public struct NFSURL: Sendable, Hashable, CustomStringConvertible {
    /// The server's host name or address.
    public var server: String
    /// The absolute path on the server, as written (`/export/dir/file`).
    public var path: String
    /// The query string without its `?`, such as `nfsport=2049&version=3`; empty when there is none.
    public var query: String

    /// Parses `string`, throwing an ``NFSError`` with code `EINVAL` that says what is wrong.
    public init(_ string: String) throws {
        func invalid(_ why: String) -> NFSError {
            NFSError(code: .invalidArgument, operation: "parse URL", path: string.isEmpty ? "\"\"" : string, message: why)
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
        if server.contains(":") && !(server.hasPrefix("[") && server.hasSuffix("]")) {
            throw invalid("a port in the host is not supported; use ?nfsport=N&mountport=M")
        }
        let path = String(rest[slash...])
        guard !path.isEmpty else { throw invalid("the URL names no export path") }
        self.server = server
        self.path = path
        self.query = query
    }

    /// Creates a URL from its parts.
    public init(server: String, path: String, query: String = "") {
        self.server = server
        self.path = path.hasPrefix("/") ? path : "/" + path
        self.query = query
    }

    /// The URL as text.
    public var description: String { "nfs://\(server)\(path)\(query.isEmpty ? "" : "?" + query)" }

    /// The last path component (`file` in `/export/dir/file`), empty for `/`.
    public var lastComponent: String {
        path.split(separator: "/").last.map(String.init) ?? ""
    }

    /// The URL of the parent directory, with the same query.
    public var deletingLastComponent: NFSURL {
        var parts = path.split(separator: "/")
        if !parts.isEmpty { parts.removeLast() }
        return NFSURL(server: server, path: "/" + parts.joined(separator: "/"), query: query)
    }

    /// The URL of `component` inside this one, with the same query.
    public func appending(_ component: String) -> NFSURL {
        let base = path.hasSuffix("/") ? path : path + "/"
        let tail = component.hasPrefix("/") ? String(component.dropFirst()) : component
        return NFSURL(server: server, path: base + tail, query: query)
    }

    /// The value of the query argument `name`, if present.
    public func argument(_ name: String) -> String? {
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.first.map(String.init) == name { return kv.count > 1 ? String(kv[1]) : "" }
        }
        return nil
    }
}

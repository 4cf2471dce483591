import LibNFS
import Synchronization

/// A copy operand: a local path or an `nfs://` URL.
public enum Operand: Sendable, Hashable, CustomStringConvertible {
    case local(String)
    case nfs(NFSURL)

    /// Parses an operand; anything that is not `nfs://…` and has no other `scheme://` is a local path.
    public init(_ text: String) throws {
        if text.hasPrefix("nfs://") {
            self = .nfs(try NFSURL(text))
        } else if let range = text.range(of: "://"), !text[..<range.lowerBound].contains("/") {
            throw NFSError(code: .invalidArgument, operation: "parse", path: text,
                           message: "only local paths and nfs:// URLs are supported")
        } else {
            self = .local(text)
        }
    }

    public var description: String {
        switch self {
        case .local(let path): path
        case .nfs(let url): url.description
        }
    }
}

/// Mounts what operands name, once per mount point, and closes them all at the end.
/// Each worker of a parallel copy has its own, so that no two workers share a context.
public final class Mounter: Sendable {
    private let options: NFSOptions
    private let contexts = Mutex<[String: NFSContext]>([:])
    private let resolved = Mutex<[Operand: (root: String, path: String)]>([:])

    public init(options: NFSOptions) { self.options = options }

    private func mount(_ url: NFSURL) throws -> NFSContext {
        let key = url.description
        if let cached = contexts.withLock({ $0[key] }) { return cached }
        let context = try NFSContext(url: key, options: options)
        contexts.withLock { $0[key] = context }
        return context
    }

    /// Which URL to mount for `url`, and the path of `url` inside that mount.
    ///
    /// The parent directory is tried first, so that files and names that do not
    /// exist yet work; then the URL itself (an export's root has no mountable
    /// parent); then the parent's ancestors, so that a missing directory is
    /// reported by the lookup below a mount ("No such file or directory") rather
    /// than by the MOUNT protocol, which answers "Permission denied" for it.
    private func findMountPoint(for url: NFSURL) throws -> (root: NFSURL, path: String) {
        if url.lastComponent.isEmpty { return (url, "/") }
        var candidates = [url.deletingLastComponent, url]
        var ancestor = url.deletingLastComponent
        while !ancestor.lastComponent.isEmpty {
            ancestor = ancestor.deletingLastComponent
            candidates.append(ancestor)
        }
        var firstError: NFSError?
        for candidate in candidates {
            do {
                _ = try mount(candidate)
                let prefix = candidate.path.split(separator: "/")
                let rest = url.path.split(separator: "/").dropFirst(prefix.count)
                return (candidate, "/" + rest.joined(separator: "/"))
            } catch let error as NFSError {
                // A server that is down or silent gives the same answer for every path.
                if error.isTimeout || error.code == .connectionRefused { throw error }
                if firstError == nil { firstError = error }
            }
        }
        throw firstError ?? NFSError(code: .noSuchFileOrDirectory, operation: "mount", path: url.description)
    }

    /// The file system and the path within it that `operand` names; see ``findMountPoint(for:)``.
    public func resolve(_ operand: Operand) throws -> (fileSystem: any CopyFileSystem, path: String) {
        switch operand {
        case .local(let path):
            return (LocalFileSystem(), path)
        case .nfs(let url):
            if let known = resolved.withLock({ $0[operand] }) {
                return (NFSFileSystem(context: try mount(try NFSURL(known.root))), known.path)
            }
            let result = try findMountPoint(for: url)
            resolved.withLock { $0[operand] = (result.root.description, result.path) }
            return (NFSFileSystem(context: try mount(result.root)), result.path)
        }
    }

    /// Unmounts everything this mounter mounted; errors are ignored (nothing is left to lose).
    public func closeAll() {
        let all = contexts.withLock { c -> [NFSContext] in defer { c = [:] }; return Array(c.values) }
        for context in all { try? context.close() }
    }
}

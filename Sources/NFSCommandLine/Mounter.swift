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

    /// The file system and the path within it that `operand` names.
    ///
    /// An NFS URL's parent directory is mounted and its last component looked
    /// up in it, so that files and not-yet-existing names work; when the parent
    /// cannot be mounted (the URL is an export's root) the URL itself is mounted.
    public func resolve(_ operand: Operand) throws -> (fileSystem: any CopyFileSystem, path: String) {
        switch operand {
        case .local(let path):
            return (LocalFileSystem(), path)
        case .nfs(let url):
            if let known = resolved.withLock({ $0[operand] }) {
                return (NFSFileSystem(context: try mount(try NFSURL(known.root))), known.path)
            }
            var result: (root: NFSURL, path: String)
            if url.lastComponent.isEmpty {
                result = (url, "/")
            } else {
                do {
                    _ = try mount(url.deletingLastComponent)
                    result = (url.deletingLastComponent, "/" + url.lastComponent)
                } catch let parentError as NFSError where !parentError.isTimeout && parentError.code != .connectionRefused {
                    do {
                        _ = try mount(url)
                        result = (url, "/")
                    } catch {
                        throw parentError
                    }
                }
            }
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

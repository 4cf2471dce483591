import LibNFS
import Synchronization
import SystemPackage

/// A copy operand: a local path or an `nfs://` URL.
public enum Operand: Sendable, Hashable, CustomStringConvertible {
    case local(FilePath)
    case nfs(NFSURL)

    /// A URL whose path ends in `/`, which can only name a directory.
    var namesDirectory: Bool {
        if case .nfs(let url) = self { url.path.hasSuffix("/") } else { false }
    }

    /// Parses an operand; anything that is not `nfs://…` and has no other `scheme://` is a local path.
    public init(_ text: String) throws {
        try self.init(bytes: Array(text.utf8))
    }

    /// Parses an operand from the bytes of a command-line argument, which need
    /// not be UTF-8: a local path keeps them exactly; in a URL, bytes that are
    /// not UTF-8 stand for themselves as `%XX` escapes would.
    public init(bytes: [UInt8]) throws {
        let text = String(decoding: bytes, as: UTF8.self)
        func invalid(_ why: String) -> NFSError {
            NFSError(code: .invalidArgument, operation: "parse", url: FilePath(bytes: bytes).escapedDescription, detail: why)
        }
        guard !bytes.isEmpty else { throw invalid("an operand is empty") }
        guard !bytes.contains(0) else { throw invalid("an operand contains a NUL byte") }
        if text.hasPrefix("nfs://") {
            self = .nfs(try NFSURL(bytes: bytes))
        } else if let range = text.range(of: "://"), !text[..<range.lowerBound].contains("/") {
            throw invalid("only local paths and nfs:// URLs are supported")
        } else {
            self = .local(FilePath(bytes: bytes))
        }
    }

    public var description: String {
        switch self {
        case .local(let path): path.escapedDescription
        case .nfs(let url): url.description
        }
    }
}

/// Mounts what operands name, once per mount point, and closes them all at the end.
/// The files of a parallel copy share its contexts: each keeps many requests in flight.
public final class Mounter: Sendable {
    private let options: NFSOptions
    /// One mount per URL, made by the first task that needs it while the others wait for it;
    /// its one file system, so that every file shares its directory handles.
    private let contexts = Mutex<[String: Once<Result<NFSFileSystem, any Error>>]>([:])
    private let resolved = Mutex<[Operand: (root: String, path: FilePath)]>([:])

    public init(options: NFSOptions) { self.options = options }

    /// The file system for `url`, mounted once; a mount whose connection was lost
    /// is replaced by a fresh mount (a restarted server is reachable again),
    /// one for all the files in flight that met the lost connection.
    private func mount(_ url: NFSURL) async throws -> NFSFileSystem {
        let key = url.description
        var retried = false
        while true {
            let slot = contexts.withLock { contexts in
                if let slot = contexts[key] { return slot }
                let slot = Once<Result<NFSFileSystem, any Error>>()
                contexts[key] = slot
                return slot
            }
            let mounted = await slot.value {
                var options = options
                if url.argument("readahead") != nil { options.readahead = nil }
                if url.argument("auto-traverse-mounts") != nil { options.traversesNestedExports = nil }
                do { return .success(NFSFileSystem(context: try await NFSContext(url: key, options: options))) } catch {
                    return .failure(error)
                }
            }
            // A mount lost again at once is used as it is: its calls then fail with the loss, clearly.
            if case .success(let fileSystem) = mounted, !fileSystem.context.isConnectionLost || retried { return fileSystem }
            // A failed mount is not kept: the next file tries again. A lost one is closed by whoever drops it.
            let dropped = contexts.withLock { contexts in
                guard contexts[key] === slot else { return false }
                contexts[key] = nil
                return true
            }
            if dropped, case .success(let lost) = mounted { try? await lost.context.close() }
            if case .failure(let error) = mounted { throw error }
            retried = true
        }
    }

    /// Which URL to mount for `url`, and the path of `url` inside that mount.
    ///
    /// The parent directory is tried first, so that files and names that do not
    /// exist yet work; then the URL itself (an export's root has no mountable
    /// parent); then the parent's ancestors, so that a missing directory is
    /// reported by the lookup below a mount ("No such file or directory") rather
    /// than by the MOUNT protocol, which answers "Permission denied" for it.
    private func findMountPoint(for url: NFSURL) async throws -> (root: NFSURL, path: FilePath) {
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
                _ = try await mount(candidate)
                let prefix = candidate.filePath.components.count
                return (candidate, FilePath(root: "/", url.filePath.components.dropFirst(prefix)))
            } catch let error as NFSError {
                // A server that is down or silent gives the same answer for every path.
                if error.isTimeout || error.code == .connectionRefused { throw error }
                if firstError == nil { firstError = error }
            }
        }
        throw firstError ?? NFSError(code: .noSuchFileOrDirectory, operation: "mount", url: url.description)
    }

    /// The file system and the path within it that `operand` names; see ``findMountPoint(for:)``.
    public func resolve(_ operand: Operand) async throws -> (fileSystem: any CopyFileSystem, path: FilePath) {
        switch operand {
        case .local(let path):
            return (LocalFileSystem(), path)
        case .nfs(let url):
            if let known = resolved.withLock({ $0[operand] }) {
                return (try await mount(try NFSURL(known.root)), known.path)
            }
            let result = try await findMountPoint(for: url)
            resolved.withLock { $0[operand] = (result.root.description, result.path) }
            return (try await mount(result.root), result.path)
        }
    }

    /// Unmounts everything this mounter mounted, all at once; errors are ignored (nothing is left to lose).
    public func closeAll() async {
        let slots = contexts.withLock { c -> [Once<Result<NFSFileSystem, any Error>>] in defer { c = [:] }; return Array(c.values) }
        await withTaskGroup(of: Void.self) { group in
            for slot in slots {
                group.addTask {
                    // Made already: nothing is in flight once the copy has ended.
                    if case .success(let fileSystem) = await slot.value({ .failure(CancellationError()) }) {
                        try? await fileSystem.context.close()
                    }
                }
            }
        }
    }
}

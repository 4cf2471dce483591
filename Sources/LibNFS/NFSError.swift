import SystemPackage

/// An error from an NFS operation: what was attempted, on which path, and why.
///
/// Every failing libnfs call surfaces as an `NFSError`; no API in this package
/// returns a sentinel. ``code`` is the POSIX errno (a timed-out call is
/// ``SystemPackage/Errno/timedOut`` and a lost connection
/// ``SystemPackage/Errno/connectionReset``, whatever code libnfs used), ``detail``
/// is this package's explanation and ``libnfsMessage`` libnfs's own text; the
/// two are never mixed.
///
/// ```swift
/// do { _ = try nfs.stat("/missing") }
/// catch let error as NFSError where error.code == .noSuchFileOrDirectory { … }
/// ```
public struct NFSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The POSIX error code.
    public var code: Errno
    /// The operation that failed, such as `open`, `stat` or `mount`.
    public var operation: String
    /// The path (relative to the export) the operation was applied to, byte for byte.
    public var path: FilePath?
    /// The URL the operation was applied to, for mounting and URL parsing.
    public var url: String?
    /// This package's explanation, when it has one: what was refused, which limit was hit.
    public var detail: String?
    /// libnfs's description of the failure (`nfs_get_error`), when it gave one.
    public var libnfsMessage: String?

    /// Creates an error; the library creates these, but tests and tools may too.
    public init(code: Errno, operation: String, path: FilePath? = nil, url: String? = nil,
                detail: String? = nil, libnfsMessage: String? = nil) {
        self.code = code
        self.operation = operation
        self.path = path
        self.url = url
        self.detail = detail
        self.libnfsMessage = libnfsMessage
    }

    /// True when the operation did not complete within ``NFSOptions/timeout``.
    public var isTimeout: Bool { code == .timedOut }

    /// What the operation was applied to, as text: the URL, or the path with
    /// bytes that are not UTF-8 escaped (`caf\xE9.txt`).
    public var target: String? { url ?? path?.escapedDescription }

    /// One line a user understands:
    /// `stat /a/b: No such file or directory (libnfs: …)`, or
    /// `read /big: Timed out waiting for the server; no reply within 2 s (libnfs: …)`.
    public var description: String {
        var text = operation
        if let target { text += " \(target)" }
        text += ": \(explanation)"
        if let libnfsMessage, !libnfsMessage.isEmpty { text += " (libnfs: \(libnfsMessage))" }
        return text
    }

    /// The reason and this package's detail, without operation, path or libnfs's text.
    public var explanation: String {
        guard let detail, !detail.isEmpty else { return reason }
        return "\(reason); \(detail)"
    }

    /// The reason alone, without operation and path: `No such file or directory`.
    public var reason: String {
        switch code {
        case .timedOut: "Timed out waiting for the server"
        case .connectionReset: "Lost the connection to the server"
        default: code.description
        }
    }
}

extension NFSError {
    /// Builds an error from a negative libnfs return value and the context's error text.
    static func fromLibNFS(result: Int32, operation: String, path: FilePath?, url: String? = nil, message: String?,
                           elapsed: Duration? = nil, timeout: Duration? = nil, connectionChanged: Bool = false) -> NFSError {
        let code = VersionQuirks.errno(result: result, message: message, elapsed: elapsed, timeout: timeout,
                                       connectionChanged: connectionChanged)
        var error = NFSError(code: code, operation: operation, path: path, url: url, libnfsMessage: message)
        if code == .timedOut, let timeout {
            error.detail = "no reply within the \(timeout.components.seconds) s timeout"
        } else if code == .connectionReset, let timeout, connectionChanged || elapsed.map({ $0 >= timeout }) == true {
            error.detail = "not restored within the \(timeout.components.seconds) s timeout"
        }
        return error
    }
}

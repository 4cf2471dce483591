import SystemPackage

/// An error from an NFS operation: what was attempted, on which path, and why.
///
/// Every failing libnfs call surfaces as an `NFSError`; no API in this package
/// returns a sentinel. ``code`` is the POSIX errno libnfs reported (a timed-out
/// call is reported as ``SystemPackage/Errno/timedOut``, not as the
/// "interrupted" code libnfs 4 returns), ``message`` is libnfs's own text.
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
    /// The path (relative to the export) or URL the operation was applied to.
    public var path: String?
    /// libnfs's description of the failure (`nfs_get_error`), when it gave one.
    public var message: String?

    /// Creates an error; the library creates these, but tests and tools may too.
    public init(code: Errno, operation: String, path: String? = nil, message: String? = nil) {
        self.code = code
        self.operation = operation
        self.path = path
        self.message = message
    }

    /// True when the operation did not complete within ``NFSOptions/timeout``.
    public var isTimeout: Bool { code == .timedOut }

    /// One line a user understands: `stat /a/b: No such file or directory (libnfs: …)`.
    public var description: String {
        var text = operation
        if let path { text += " \(path)" }
        text += ": \(reason)"
        if let message, !message.isEmpty { text += " (libnfs: \(message))" }
        return text
    }

    /// The reason alone, without operation and path: `No such file or directory`.
    public var reason: String {
        code == .timedOut ? "Timed out waiting for the server" : code.description
    }
}

extension NFSError {
    /// Builds an error from a negative libnfs return value and the context's error text.
    static func fromLibNFS(result: Int32, operation: String, path: String?, message: String?,
                           elapsed: Duration? = nil, timeout: Duration? = nil) -> NFSError {
        let code = VersionQuirks.errno(result: result, message: message, elapsed: elapsed, timeout: timeout)
        return NFSError(code: code, operation: operation, path: path, message: message)
    }
}

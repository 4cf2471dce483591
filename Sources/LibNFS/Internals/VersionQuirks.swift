import SystemPackage

/// How the libnfs versions this package supports differ at run time, in one
/// place (the compile-time differences are in `CLibNFS/shim.h`). Each quirk
/// names the versions it was seen with and how the Swift side evens it out.
enum VersionQuirks {
    /// The errno an error should carry, given what libnfs returned and said.
    ///
    /// - libnfs 4.x-7.x report their own RPC timeout as EINTR with "command
    ///   timed out", and the other RPCs of a split read or write, cancelled by
    ///   that timeout, as EINTR with "Command was cancelled": that is a timeout.
    /// - libnfs 6.0.2's `nfs_open2` returns -ERANGE whatever went wrong, while
    ///   its message keeps the server's status, as in
    ///   `Lookup of /x failed with NFS3ERR_NOENT(-2)`: the errno in the message wins.
    static func errno(result: Int32, message: String?) -> Errno {
        var raw = result < 0 ? -result : result
        if raw == 0 { raw = Errno.ioError.rawValue }
        let code = Errno(rawValue: raw)
        guard let message else { return code }
        if code == .interrupted, message.contains("timed out") || message.contains("cancelled") {
            return .timedOut
        }
        if code == .outOfRange, let reported = statusErrno(in: message) {
            return reported
        }
        return code
    }

    /// The errno in the last `NFS3ERR_…(-N)` or `NFS4ERR_…(-N)` of a libnfs message.
    static func statusErrno(in message: String) -> Errno? {
        var found: Errno? = nil
        var rest = message[...]
        while let marker = rest.firstRange(of: "ERR_") {
            rest = rest[marker.upperBound...]
            guard let open = rest.firstIndex(of: "("), let close = rest[open...].firstIndex(of: ")") else { break }
            let name = rest[..<open]
            guard name.allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" }) else { continue }
            if let value = Int32(rest[rest.index(after: open)..<close]), value < 0 {
                found = Errno(rawValue: -value)
            }
        }
        return found
    }
}

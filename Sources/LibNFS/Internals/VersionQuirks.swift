import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the libnfs versions this package supports differ at run time, in one
/// place (the compile-time differences are in `CLibNFS/shim.h`). Each quirk
/// names the versions it was seen with and how the Swift side evens it out.
enum VersionQuirks {
    /// The errno an error should carry, given what libnfs returned and said,
    /// and, when known, how long the call took against its timeout.
    ///
    /// - libnfs 4.x-7.x report their own RPC timeout as EINTR with "command
    ///   timed out", and the other RPCs of a split read or write, cancelled by
    ///   that timeout, as EINTR with "Command was cancelled": that is a timeout.
    /// - libnfs 6.0.2 and 7.0.0 treat an RPC timeout as a broken connection:
    ///   the call fails with EIO and "nfs_service failed" (the timeout's own
    ///   text is overwritten). A call that ends so after running its whole
    ///   timeout timed out.
    /// - libnfs 5.0.3 ends a mount that the server never answers with EINTR
    ///   and an empty text ("mount_cb: "): after the whole timeout, that too
    ///   is a timeout (its sync API interrupts nothing else).
    /// - libnfs 6.0.2 with `retrans=0` ends a timed-out call with EINTR and an
    ///   empty text: on API v2 that is a timeout.
    /// - A connection that breaks (the server closes it, the network cuts it)
    ///   ends the call with EIO and "nfs_service failed" on every version; with
    ///   auto-reconnect, libnfs 4.0.0 instead ends it with EINTR and the socket
    ///   layer's text (such as "Incoming PDU exceeds limit", read from a stream
    ///   it resumed mid-reply). Either, before the timeout, is a lost
    ///   connection (ECONNRESET), not an "Interrupted system call". So is any
    ///   call whose text is the socket layer's ("Socket failed with POLLHUP",
    ///   "Error when writing to socket :Broken pipe"), even after the whole timeout: libnfs spent it trying to reconnect.
    ///   With calls in flight on the async API, libnfs fails each of them
    ///   itself when it cannot (or may not) reconnect: "RPC ERROR: Failed to
    ///   reconnect async", status EFAULT; that too is a lost connection.
    /// - libnfs 6.0.2's and 7.0.0's `nfs_open2` return -ERANGE whatever went
    ///   wrong, while the message keeps the cause: the server's status, as in
    ///   `Lookup of /x failed with NFS3ERR_NOENT(-2)`, or libnfs's own
    ///   `ACCESS denied` check. The cause in the message wins.
    /// - libnfs 6.0.2 and 7.0.0 open a directory for writing by truncating it,
    ///   which the server refuses with NFS3ERR_BADTYPE (EINVAL); 4.x says EISDIR,
    ///   as POSIX does, and so does this package on every version.
    /// - libnfs (4.x-7.x) ends a call whose RPC failed (a failed WRITE, a
    ///   reply it could not decode) with EFAULT: that is an I/O error, not a
    ///   bad address in this process, which never hands libnfs one.
    ///
    /// `connectionChanged` says that the call's socket was replaced under it
    /// (see ``watchesConnection``), or that the engine saw the peer close or
    /// refuse the connection while the call was out: a timeout then is a lost
    /// connection, and so is an RPC-layer failure (EFAULT).
    static func errno(result: Int32, message: String?, elapsed: Duration? = nil, timeout: Duration? = nil,
                      connectionChanged: Bool = false) -> Errno {
        let code = errnoFromLibNFS(result: result, message: message, elapsed: elapsed, timeout: timeout)
        // EFAULT is the RPC layer's own failure (7.0.0's split reads report it as
        // "r_cb multi pread failed with -14"): over a broken connection, that broke it.
        let transportFailure = code == .timedOut || abs(result) == EFAULT
        return transportFailure && connectionChanged ? .connectionReset : code
    }

    private static func errnoFromLibNFS(result: Int32, message: String?, elapsed: Duration?, timeout: Duration?) -> Errno {
        var raw = result < 0 ? -result : result
        if raw == 0 { raw = Errno.ioError.rawValue }
        let code = Errno(rawValue: raw)
        guard let message else { return code == .badAddress ? .ioError : code }
        let reconnectFailed = ["Failed to reconnect", "attempts to reconnect failed"].contains(where: message.contains)
        // libnfs 6.x-7.x reconnect on a timeout themselves and, when that fails, end the
        // calls with the reconnect's words: after the whole timeout, that is a timeout
        // (a lost connection if the peer was seen to close it: `connectionChanged`).
        if reconnectFailed, Syscalls.apiVersion >= 2, let elapsed, let timeout, elapsed >= timeout {
            return .timedOut
        }
        // The socket layer's own words: the connection broke, and libnfs's reconnects
        // (if any) had not restored it when the call gave up.
        if ["Socket failed", "POLLHUP", "POLLERR", "socket error", "Error when writing to socket",
            "Read from socket failed", "not connected", "Incoming PDU exceeds limit", "Failed to reconnect",
            "attempts to reconnect failed"].contains(where: message.contains) {
            return .connectionReset
        }
        if code == .interrupted, message.contains("timed out") || message.contains("cancelled") {
            return .timedOut
        }
        let brokenService = code == .ioError && message == "nfs_service failed"
        if brokenService || code == .interrupted, let elapsed, let timeout, elapsed >= timeout {
            return .timedOut
        }
        if code == .interrupted, Syscalls.apiVersion >= 2, message.isEmpty {
            return .timedOut
        }
        if brokenService || code == .interrupted {
            return .connectionReset
        }
        var cause = code
        if code == .outOfRange {
            if let reported = statusErrno(in: message) { cause = reported }
            else if message.contains("ACCESS denied") { cause = .permissionDenied }
        }
        if cause == .invalidArgument, message.contains("Setattr failed with NFS3ERR_BADTYPE") {
            return .isDirectory
        }
        // 7.0.0 ends a READ it split into several RPCs with EFAULT ("r_cb multi pread
        // failed with -14") when they time out: after the whole timeout, a timeout.
        if cause == .badAddress, let elapsed, let timeout, elapsed >= timeout {
            return .timedOut
        }
        if cause == .badAddress {
            return .ioError
        }
        return cause
    }

    /// True when a timed-out call whose connection changed under it counts as a lost connection.
    ///
    /// libnfs 5.0.3 reconnects a broken connection until the call's timeout
    /// and then reports "Command was cancelled", as for a server that is merely
    /// slow; only the socket tells the two apart (a new one, or none). 4.x-5.x
    /// never reconnect on a timeout, so a changed socket means the connection
    /// broke. 6.x-7.x may reconnect after a timeout itself, so there a timeout
    /// stays a timeout.
    static var watchesConnection: Bool { Syscalls.apiVersion < 2 }

    /// True when a READ that `version` answers with fewer bytes than asked met
    /// the end of the file.
    ///
    /// libnfs 4.x-5.x over NFSv3 ask again for the rest of a READ the server
    /// answered short without its eof flag (and fail one answered with nothing
    /// before the end), so only the end of the file reaches the caller short:
    /// reading on from there would cost a round trip to be told so (a second
    /// READ for every small file). Their NFSv4 client, and 6.x-7.x on either
    /// version, hand on the server's count as it is and drop the eof flag, so
    /// there a short READ is read on from.
    static func shortReadIsEndOfFile(_ version: NFSOptions.Version) -> Bool {
        Syscalls.apiVersion < 2 && version == .v3
    }

    /// True when every send to the server must go out whole (libnfs 5.x).
    ///
    /// libnfs 5.0.3 sends a request as several pieces (record mark, header,
    /// the caller's data, XDR padding) and, when the kernel took only part of
    /// it, resumes by skipping the bytes already sent in each later piece too:
    /// an unaligned WRITE loses its padding, and the server, a byte short,
    /// waits for a record that never ends, answering nothing more on that
    /// connection (seen as 30 s timeouts with 16 files written at once; the
    /// capture showed a 799,159-byte WRITE one byte short). 6.0 fixed the
    /// resume. Here the engine makes the connected socket blocking for sends,
    /// so that a send completes, bounded by the timeout (``Platform/makeSendsWhole(_:within:)``);
    /// receives stay non-blocking (libnfs passes `MSG_DONTWAIT`).
    static var needsWholeSends: Bool { Syscalls.resumesPartialSendsWrongly }

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

    /// True when an unmount that failed with `error` did unmount, as libnfs 7.0.0 reads it.
    ///
    /// libnfs 6.0.x sends UMNT, then drops the MOUNT connection itself and
    /// reports the -EIO of that disconnect, so every unmount seems to fail.
    /// 7.0.0 fixed this in `nfs_umount` by counting -EIO as success there; the
    /// same rule applies here to every API v2 libnfs (4.x-5.x never do this).
    static func unmountSucceeded(despite error: NFSError) -> Bool {
        Syscalls.apiVersion >= 2 && error.code == .ioError
    }

    /// True when a path-based chown would change the wrong object.
    ///
    /// libnfs 7.0.0's NFSv4 `nfs_chown`/`nfs_lchown` look up the parent of the
    /// path and apply SETATTR there: the directory gets the new owner, the file
    /// keeps its own (seen against Ganesha; `nfs_fchown` on an open file is right).
    /// Older versions' v4 clients are refused at mount, so this is every v4 mount.
    static func pathChownChangesParent(version: NFSOptions.Version) -> Bool {
        version == .v4
    }

    /// True when the mount must run with its calls allowed one retransmission
    /// (libnfs 6.x: API v2 with a shared-object version below 17, or unknown).
    ///
    /// 6.0.2 runs a mount's calls with `retrans` 0, which makes each call's
    /// major timeout the moment it was queued, so the once-a-second timeout
    /// scan fails every call of the mount it finds waiting, whatever the
    /// timeout: a mount whose server took 1.2 s over each reply failed after
    /// 1.0 s as "no reply within the 60 s timeout" (`MountTests`), and so,
    /// by the same rule, does a mount over a long round trip or on a loaded
    /// machine. 7.0.0 fixed it ("Never less than pdu->timeout").
    /// `RetransmittingMount` drives those mounts instead, and the unmount
    /// (`NFSContext.unmountRequest`, on a new MOUNT connection) gets the same.
    static var mountRetransmits: Bool {
        guard Syscalls.apiVersion >= 2 else { return false }
        return NFSLibrary.fileMajorVersion.map { $0 < 17 } ?? true
    }

    // Retransmission (libnfs 6.0.2 and 7.0.0): they resend a timed-out RPC
    // (`retrans`, default 2) as a hard mount does, without end, so a call on a
    // server that stops answering never ends (seen with nfs-cp over NFSv3 and
    // NFSv4). Setting `retrans=0` by default was tried: with it, 6.0.2 failed
    // ordinary calls under load (a 10 MiB write, striped copies, eight tasks on
    // one context) with EINTR or ERANGE and no text, 32 failures in 14 tests,
    // while its default passes them all (2026-11-22). Wrong answers to healthy
    // calls are worse than a dead server's call outliving its timeout, so
    // libnfs's default stays until the event-loop engine bounds every call
    // itself; a URL may still say `retrans=0`. Open in issue 11.
}

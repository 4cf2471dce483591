internal import CLibNFS
import SystemPackage

/// libnfs's mount, driven on the calling thread as libnfs's own synchronous
/// `nfs_mount` drives it, but with each of the mount's calls allowed one
/// retransmission, for the libnfs versions whose mount otherwise fails any
/// call still waiting at a timeout scan (``VersionQuirks/mountRetransmits``).
///
/// A retransmitted call never fails by itself, so the mount is bounded here:
/// it ends with a timeout two seconds after the context's timeout (libnfs
/// scans for expired calls once a second).
enum RetransmittingMount {
    /// What the mount's callback reported; read and written only on the
    /// thread that drives the mount (libnfs calls back inside `nfs_service`,
    /// or inside `nfs_destroy_context` for a mount given up on).
    private final class Outcome {
        var status: Int32?
        var text: String?
    }

    /// Takes the outcome's retained reference: libnfs calls a mount's callback once.
    private static let callback: nfs_cb = { status, nfs, data, privateData in
        guard let privateData else { return }
        let outcome = Unmanaged<Outcome>.fromOpaque(privateData).takeRetainedValue()
        outcome.status = status
        guard status < 0 else { return }
        outcome.text = Syscalls.mountFailureText(nfs, data)
    }

    /// Mounts `export` on `server` as `nfs_mount` does; returns its result
    /// (0, or a negative errno) and libnfs's text for a failure.
    static func mount(_ nfs: Syscalls.Context, server: String, export: FilePath) -> (result: Int32, message: String?) {
        let timeout = Syscalls.timeout(nfs)
        let outcome = Outcome()
        let privateData = Unmanaged.passRetained(outcome).toOpaque()
        Syscalls.setMountRetransmits(nfs, timeoutMilliseconds: timeout)
        guard Syscalls.mountAsync(nfs, server: server, export: export, callback: callback, privateData) == 0 else {
            if outcome.status == nil { Unmanaged<Outcome>.fromOpaque(privateData).release() }
            return (-EIO, Syscalls.errorText(nfs))
        }
        let deadline = timeout > 0 ? ContinuousClock.now + .milliseconds(timeout) + .seconds(2) : nil
        while outcome.status == nil {
            let descriptor = Syscalls.descriptor(nfs)
            let events = descriptor >= 0 ? Syscalls.whichEvents(nfs) : 0
            let revents = Platform.poll(wake: -1, descriptor: descriptor, events: events,
                                        milliseconds: min(100, deadline.map { ($0 - .now).pollMilliseconds } ?? 100))
            // Again each time: the mount's move from the MOUNT to the NFS
            // connection resets the retransmissions inside `nfs_service`.
            Syscalls.setMountRetransmits(nfs, timeoutMilliseconds: timeout)
            // Also with no events: that is the tick in which libnfs expires timed-out calls.
            let serviced = Syscalls.service(nfs, revents: revents)
            if outcome.status != nil { break }
            // As `nfs_mount` reports it; the caller tells a timeout from a lost connection by the time taken.
            if serviced < 0 { return (-EIO, "nfs_service failed") }
            if let deadline, ContinuousClock.now >= deadline { return (-ETIMEDOUT, nil) }
        }
        return (outcome.status ?? 0, outcome.text)
    }
}

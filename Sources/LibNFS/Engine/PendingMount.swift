internal import CLibNFS
import SystemPackage

/// A mount that the engine's service thread finishes (an *early* mount, see
/// `NFSContext.init(url:options:)`): libnfs's `nfs_mount_async`, issued before
/// the engine starts.
///
/// libnfs's NFSv3 mount is five calls one after another: MOUNT's NULL and MNT,
/// then on the NFS connection NULL, FSINFO and GETATTR of the root. The MNT
/// reply brings the export's root handle, and from then on calls on handles
/// (libnfs's raw RPC layer, ``EngineRequest/runsBeforeMount``) can go out on
/// the NFS connection beside the mount's last three; path calls, which need
/// libnfs's own FSINFO, wait in the engine's queue until the mount has ended.
/// On a 10 ms round trip that lets a one-file copy send its first LOOKUP and
/// READs two round trips sooner.
///
/// `@unchecked Sendable`: its state is read and written under `lock`.
final class PendingMount: @unchecked Sendable {
    private let lock = ConditionLock()
    /// The root handle once the MNT reply has come (guarded by `lock`).
    private var rootHandle: [UInt8]?
    /// libnfs's result for the whole mount, 0 or a negative errno, with its text (guarded by `lock`).
    private var outcome: (status: Int32, text: String?)?
    let started = ContinuousClock.now

    /// libnfs's callback for the mount. Its private data is the mount, unretained:
    /// the service loop holds it until after `nfs_destroy_context`, the last place libnfs can call back.
    static let callback: nfs_cb = { status, nfs, data, privateData in
        guard let privateData else { return }
        let mount = Unmanaged<PendingMount>.fromOpaque(privateData).takeUnretainedValue()
        guard status < 0 else {
            if let nfs { mount.noteRootHandle(nfs) }
            return mount.end(status: 0, text: nil)
        }
        mount.end(status: status, text: Syscalls.mountFailureText(nfs, data))
    }

    /// Issues `nfs_mount_async` on the calling thread, which holds the context until the engine starts.
    /// - Returns: false when libnfs refused to start it (its text is in the context).
    func start(_ nfs: OpaquePointer, server: String, export: FilePath) -> Bool {
        Syscalls.mountAsync(nfs, server: server, export: export, callback: Self.callback,
                            Unmanaged.passUnretained(self).toOpaque()) == 0
    }

    /// Records the root handle (the service thread, after each `nfs_service` until the mount ends).
    func noteRootHandle(_ nfs: OpaquePointer) {
        let found = Syscalls.rootHandleBytes(nfs)
        guard !found.isEmpty else { return }
        lock.withLock {
            guard rootHandle == nil else { return }
            rootHandle = found
            lock.broadcast()
        }
    }

    /// Ends the mount with libnfs's result, or the engine's (a deadline, a failed `nfs_service`); the first one stands.
    func end(status: Int32, text: String?) {
        lock.withLock {
            guard outcome == nil else { return }
            outcome = (status, text)
            lock.broadcast()
        }
    }

    /// The mount's result once it has ended.
    var result: (status: Int32, text: String?)? { lock.withLock { outcome } }

    /// Blocks until the root handle is known or the mount has ended.
    /// - Returns: the root handle, or nil when the mount failed first (see ``result``).
    func waitForRootHandle() -> [UInt8]? {
        lock.withLock {
            while rootHandle == nil && outcome == nil { lock.wait() }
            if let outcome, outcome.status < 0 { return nil }
            return rootHandle
        }
    }
}

/// A mount's largest READ and WRITE: known when the context is returned, or
/// (``NFSOptions/returnsAtRootHandle``) still on their way in the reply to the
/// FSINFO that the mount sent beside the calls its caller sends first.
///
/// `@unchecked Sendable`: its state is read and written under `lock`.
final class TransferSizes: @unchecked Sendable {
    private let lock = ConditionLock()
    /// Guarded by `lock`; nil until the FSINFO has answered or failed.
    private var sizes: (readMax: Int, writeMax: Int)?

    /// Sizes known already.
    init(readMax: Int, writeMax: Int) {
        sizes = (readMax, writeMax)
    }

    /// Sizes to come from ``arrive(_:)``.
    init() {}

    /// Records the FSINFO's outcome (on the service thread); the first one stands.
    /// A failed FSINFO leaves zeros, the sizes of a server that gave none: libnfs's
    /// own FSINFO on the same connection most likely fails alike, and the context's
    /// calls with the mount's error.
    func arrive(_ result: Result<(readMax: Int, writeMax: Int), any Error>) {
        lock.withLock {
            guard sizes == nil else { return }
            sizes = (try? result.get()) ?? (0, 0)
            lock.broadcast()
        }
    }

    /// The sizes, once known: read before the FSINFO has answered, this waits for it
    /// (at most the context's timeout, after which the request has failed).
    var value: (readMax: Int, writeMax: Int) {
        lock.withLock {
            while sizes == nil { lock.wait() }
            return sizes!
        }
    }
}

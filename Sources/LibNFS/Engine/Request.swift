internal import CLibNFS
import SystemPackage

/// One libnfs call, from its submission to the engine until its result is
/// delivered: to a thread blocked in ``Request/wait()`` or to a task suspended
/// in ``Request/value()``.
///
/// The thread holding the context (see ``ServiceLoop``) starts the call (``start(_:_:)``) and libnfs calls back
/// inside `nfs_service` (``EngineCallback``). A request whose caller gave up
/// (cancelled, or failed by the engine's own deadline) is *abandoned*: it
/// never starts if it had not, and its callback, which libnfs still owes,
/// touches none of the caller's memory. Both checks happen under the
/// request's lock, so a caller's buffer is safe to free once
/// ``finish(_:)`` has returned.
///
/// `@unchecked Sendable`: the mutable state is read and written only under `lock`;
/// `connection`, `loop` and `calledBack` only on the thread holding the context.
class EngineRequest: @unchecked Sendable {
    let operation: String
    let path: FilePath?
    let created = ContinuousClock.now
    /// The socket the call started on (see ``VersionQuirks/watchesConnection``).
    var connection: UInt64?
    /// The loop that started the call; it outlives every callback (they run inside it, the last ones in `nfs_destroy_context`).
    unowned(unsafe) var loop: ServiceLoop?
    /// Set when libnfs has called back (thread holding the context only); some calls do so inside their `_async` function.
    var calledBack = false
    /// The libnfs file handle a READ or WRITE uses. libnfs's callbacks for these
    /// write into the handle (4.x-5.x record the read-ahead offset there on every
    /// READ), so no close may free it while one is in flight: not even one whose
    /// caller abandoned it, such as the READs a stream sent past the end of a file.
    var file: OpaquePointer?
    /// The libnfs file handle this request closes: the engine starts it only once
    /// no request using that handle is in flight.
    var closesFile: OpaquePointer?
    /// True for an NFSv3 call on a handle (libnfs's raw RPC layer, which needs only the
    /// connection) and for inline work: it may start while an early mount's last calls
    /// are still out (see ``PendingMount``), where a path call waits for them.
    var runsBeforeMount = false
    let lock = ConditionLock()
    /// Set once the outcome is decided; guarded by `lock`.
    var isFinished = false
    /// ``isFinished``, read under the lock by a caller that does not wait.
    var hasFinished: Bool { lock.withLock { isFinished } }

    init(operation: String, path: FilePath?) {
        self.operation = operation
        self.path = path
    }

    /// Issues the libnfs `_async` call; a negative result means libnfs refused it (no callback follows).
    func issue(_ nfs: OpaquePointer, _ privateData: UnsafeMutableRawPointer) -> Int32 { fatalError("abstract") }
    /// Takes the callback's data as the call's value (on the thread driving the context).
    func succeed(status: Int32, data: UnsafeMutableRawPointer?) { fatalError("abstract") }
    /// Ends the request with `error` unless it has ended already.
    func finish(_ error: any Error) { fatalError("abstract") }

    /// Starts the call unless its caller has given up; nil when it did not start.
    ///
    /// The lock is not held while libnfs issues the call: some calls (an NFSv3
    /// close) run their callback at once, inside the `_async` function. A
    /// caller who gives up meanwhile is safe all the same: the callback
    /// checks again under the lock before it touches the caller's memory.
    func start(_ nfs: OpaquePointer, _ privateData: UnsafeMutableRawPointer) -> Int32? {
        lock.withLock { isFinished } ? nil : issue(nfs, privateData)
    }

    /// Marks the request as one that uses `file` (set before submission).
    func using(_ file: OpaquePointer) -> Self {
        self.file = file
        return self
    }

    /// Marks the request as the close of `file` (set before submission).
    func closing(_ file: OpaquePointer) -> Self {
        closesFile = file
        return self
    }

    /// True for work done on the thread holding the context without an RPC (``runInline(_:)`` instead of ``issue(_:_:)``).
    var runsInline: Bool { false }
    func runInline(_ nfs: OpaquePointer) {}
}

/// A request whose value is a `T`.
final class Request<T: Sendable>: EngineRequest, @unchecked Sendable {
    private let issueBody: (OpaquePointer, UnsafeMutableRawPointer) -> Int32
    private let successBody: (Int32, UnsafeMutableRawPointer?) -> T
    private let inlineBody: ((OpaquePointer) -> T)?
    /// Guarded by `lock`.
    private var outcome: Result<T, any Error>?
    private var continuation: CheckedContinuation<T, any Error>?
    /// Set by ``whenDone(_:)`` before submission: runs instead of a waiter.
    private var handler: (@Sendable (Result<T, any Error>) -> Void)?

    /// - Parameters:
    ///   - issue: calls the libnfs `_async` function with ``EngineCallback/function`` and the private data given.
    ///   - success: turns the callback's status and data into the value, copying out what libnfs will free.
    init(_ operation: String, path: FilePath?,
         issue: @escaping (OpaquePointer, UnsafeMutableRawPointer) -> Int32,
         success: @escaping (Int32, UnsafeMutableRawPointer?) -> T) {
        issueBody = issue
        successBody = success
        inlineBody = nil
        super.init(operation: operation, path: path)
    }

    /// An NFSv3 call on a handle, through libnfs's raw RPC layer (see ``runsBeforeMount``).
    convenience init(onHandle operation: String, path: FilePath?,
                     issue: @escaping (OpaquePointer, UnsafeMutableRawPointer) -> Int32,
                     success: @escaping (Int32, UnsafeMutableRawPointer?) -> T) {
        self.init(operation, path: path, issue: issue, success: success)
        runsBeforeMount = true
    }

    /// Work on the context that needs no RPC but must run on the thread holding the context.
    init(_ operation: String, inline: @escaping (OpaquePointer) -> T) {
        issueBody = { _, _ in -1 }
        successBody = { _, _ in fatalError("an inline request has no callback") }
        inlineBody = inline
        super.init(operation: operation, path: nil)
        runsBeforeMount = true
    }

    override var runsInline: Bool { inlineBody != nil }

    override func runInline(_ nfs: OpaquePointer) {
        let hand = lock.withLock { () -> (() -> Void)? in
            guard !isFinished, let inlineBody else { return nil }
            return deliver(.success(inlineBody(nfs)))
        }
        hand?()
    }

    override func issue(_ nfs: OpaquePointer, _ privateData: UnsafeMutableRawPointer) -> Int32 {
        issueBody(nfs, privateData)
    }

    override func succeed(status: Int32, data: UnsafeMutableRawPointer?) {
        // The value is copied out under the lock: an abandoned caller's memory is not touched.
        let hand = lock.withLock { () -> (() -> Void)? in
            guard !isFinished else { return nil }
            return deliver(.success(successBody(status, data)))
        }
        hand?()
    }

    override func finish(_ error: any Error) {
        let hand = lock.withLock { () -> (() -> Void)? in
            guard !isFinished else { return nil }
            return deliver(.failure(error))
        }
        hand?()
    }

    /// Called under `lock`: records the outcome for a blocked thread, or returns
    /// what hands it to a task or handler, to run once the lock is released.
    /// Resuming under the lock could deadlock: a task's cancellation handler
    /// (``finish(_:)``) takes this lock while the runtime holds the task's
    /// status lock, which resuming the task takes too.
    private func deliver(_ result: Result<T, any Error>) -> (() -> Void)? {
        isFinished = true
        if let handler {
            self.handler = nil
            return { handler(result) }
        } else if let continuation {
            self.continuation = nil
            return { continuation.resume(with: result) }
        } else {
            outcome = result
            lock.broadcast()
            return nil
        }
    }

    /// Hands the outcome to `body` (on the thread holding the context, or the submitter's
    /// when refused) instead of a waiter: for work nobody waits for. `body`
    /// must not wait for the engine.
    func whenDone(_ body: @escaping @Sendable (Result<T, any Error>) -> Void) -> Self {
        handler = body
        return self
    }

    /// Blocks the calling thread until the value arrives.
    func wait() throws -> T {
        try lock.withLock {
            while outcome == nil { lock.wait() }
            return try outcome!.get()
        }
    }

    /// Suspends the calling task until the value arrives; cancelling the task
    /// abandons the request and throws `CancellationError` at once.
    func value() async throws -> T {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                // Resumed outside the lock, as in ``deliver(_:)``.
                let ready: Result<T, any Error>? = lock.withLock {
                    if let outcome { return outcome }
                    self.continuation = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            finish(CancellationError())
        }
    }
}

/// The one C callback every engine request uses: libnfs calls it inside
/// `nfs_service`, on the thread holding the context, with the request as private data.
enum EngineCallback {
    static let function: nfs_cb = { status, nfs, data, privateData in
        guard let privateData else { return }
        let request = Unmanaged<EngineRequest>.fromOpaque(privateData).takeRetainedValue()
        request.loop?.callback(request, status: status, data: data)
    }
}

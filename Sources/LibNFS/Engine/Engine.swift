internal import CLibNFS
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The event loop under one ``NFSContext``: a service thread that owns the
/// mounted `nfs_context` and drives it with libnfs's `_async` calls, so that
/// many requests share its one connection.
///
/// Callers (sync or async) hand it ``Request``s through ``submit(_:)``; the
/// service thread starts them, at most ``window`` at a time, polls the
/// connection and a wake-up pipe, and calls `nfs_service`, inside which
/// libnfs runs the requests' callbacks. It ticks at least every 100 ms while
/// requests are out, so that libnfs's own timeouts fire, and fails a request
/// itself once its timeout has passed by two seconds more (libnfs 6 and later
/// resend a timed-out RPC without end).
///
/// A sync call made while the engine is idle skips the hand-off: its thread
/// takes the context and drives its one request itself (``perform(_:)``),
/// which spares two thread wake-ups per call; the service thread meanwhile
/// sleeps on the wake-up pipe alone and touches nothing.
final class Engine: Sendable {
    /// How many closes, in this process, waited for READs or WRITEs in flight on their
    /// file (see ``EngineRequest/closesFile``); tests read it to see that they do.
    static let closesHeldBack = Atomic<Int>(0)

    /// The most requests started and not yet answered.
    let window: Int
    private let shared: Locked<Shared>
    private let wake: WakePipe
    private let loop: ServiceLoop
    private let thread: ServiceThread

    struct Shared: @unchecked Sendable {
        var queue: [EngineRequest] = []
        var wakePending = false
        var stopping = false
        /// Set when the connection is gone for good: requests fail at once.
        var lost = false
        /// Set by the service thread when it has nothing to do: a caller may take the context.
        var contextFree = false
        /// Set while a caller's thread drives the context; the loop's state is then that thread's.
        var driven = false

        /// Takes every queued request out, for the caller to fail once the lock is released.
        mutating func takeQueue() -> [EngineRequest] {
            defer { queue.removeAll() }
            return queue
        }
    }

    /// Starts the service thread; from here on only the thread holding the context touches `nfs`
    /// (see ``ServiceLoop``), until the service thread destroys it on ``shutdown()``.
    ///
    /// `leaseRenewal`: how often to renew an NFSv4 lease (see ``ServiceLoop/renewLeaseIfDue()``); nil over NFSv3.
    /// `mount`: a mount still under way on `nfs`, which the service thread finishes (see ``PendingMount``).
    init(nfs: OpaquePointer, window: Int, timeout: Duration?, noDelay: Bool, leaseRenewal: Duration? = nil,
         mount: PendingMount? = nil) throws {
        self.window = max(window, 1)
        let shared = Locked(Shared())
        let wake = try WakePipe()
        let loop = ServiceLoop(nfs: nfs, window: self.window, timeout: timeout, noDelay: noDelay,
                               leaseRenewal: leaseRenewal, mount: mount, shared: shared, wake: wake)
        self.shared = shared
        self.wake = wake
        self.loop = loop
        self.thread = try ServiceThread { loop.run() }
    }

    deinit {
        shutdown()
    }

    /// Queues `request` for the service thread; fails it at once when the engine is stopped or lost.
    func submit(_ request: EngineRequest) {
        let refusal: NFSError? = shared.withLock { shared in
            if shared.stopping { return NFSContext.closedError(request.operation, request.path) }
            if shared.lost { return Self.lostError(request.operation, request.path) }
            shared.queue.append(request)
            if shared.wakePending { return nil }
            shared.wakePending = true
            wake.signal()
            return nil
        }
        if let refusal { request.finish(refusal) }
    }

    /// Submits and blocks the calling thread until the value arrives; when the
    /// engine is idle, the calling thread drives the request itself.
    func perform<T: Sendable>(_ request: Request<T>) throws -> T {
        if takeContext() {
            // SIGPIPE from a send goes to the sending thread, here the caller's.
            BrokenPipeShield.run { loop.drive(request) }
            releaseContext()
        } else {
            submit(request)
        }
        return try request.wait()
    }

    /// Hands the context to the calling thread if the service thread is idle and nothing waits.
    private func takeContext() -> Bool {
        shared.withLock { shared in
            guard shared.contextFree, !shared.driven, shared.queue.isEmpty, !shared.stopping, !shared.lost else {
                return false
            }
            shared.contextFree = false
            shared.driven = true
            return true
        }
    }

    /// Gives the context back; wakes the service thread if work arrived meanwhile or is left.
    private func releaseContext() {
        shared.withLock { shared in
            shared.driven = false
            shared.contextFree = loop.isIdle && shared.queue.isEmpty && !shared.stopping
            if !shared.contextFree {
                shared.wakePending = true
                wake.signal()
            }
        }
    }

    /// Submits and suspends the calling task until the value arrives; cancellation abandons the request.
    func perform<T: Sendable>(_ request: Request<T>) async throws -> T {
        try Task.checkCancellation()
        submit(request)
        return try await request.value()
    }

    /// Refuses every later request with `ECONNRESET` (and fails those still queued).
    func markLost() {
        let queued = shared.withLock { shared in
            shared.lost = true
            return shared.takeQueue()
        }
        for request in queued { request.finish(Self.lostError(request.operation, request.path)) }
    }

    var isLost: Bool { shared.withLock { $0.lost } }
    var isStopped: Bool { shared.withLock { $0.stopping } }

    /// Stops the service thread, which fails what is still queued and destroys
    /// the context (libnfs then fails the calls in flight). Waits for it unless
    /// called on the service thread itself. Safe to call twice.
    func shutdown() {
        let first = shared.withLock { shared in
            defer { shared.stopping = true }
            return !shared.stopping
        }
        if first { wake.signal() }
        thread.join()
    }

    static func lostError(_ operation: String, _ path: FilePath?) -> NFSError {
        NFSError(code: .connectionReset, operation: operation, path: path,
                 detail: "the connection was lost earlier and could not be restored; mount again")
    }
}

/// What drives the context. Its state and `nfs` belong to *the thread holding
/// the context*: the service thread, or a sync caller that took the idle
/// context (``Engine/Shared/driven``); the hand-over happens under `shared`'s
/// lock. Other threads touch only `shared` (under its lock) and `wake`.
final class ServiceLoop: @unchecked Sendable {
    private let nfs: OpaquePointer
    private let window: Int
    private let timeout: Duration?
    private let noDelay: Bool
    private let shared: Locked<Engine.Shared>
    private let wake: WakePipe
    private var inFlight: [ObjectIdentifier: EngineRequest] = [:]
    /// Closes held back until the READs and WRITEs in flight on their file have called back.
    private var parkedCloses: [EngineRequest] = []
    /// Set when `nfs_service` failed: libnfs cannot use the context again.
    private var dead = false
    /// Set while `nfs_destroy_context` runs the callbacks of the calls it cancels.
    private var destroying = false
    /// The socket (by inode: a new connection may reuse the descriptor's number) set up last.
    private var preparedConnection: UInt64?
    /// When the peer last closed or refused the connection (a hang-up or error seen by poll).
    private var lastBreak: ContinuousClock.Instant?
    /// Set by a break, cleared by the next call that succeeds: until then the connection is
    /// not known to work, and a call issued after the break that fails failed with it
    /// (7.0.0 over NFSv4 fails such reads with "r_cb multi pread failed with -14").
    private var brokenSinceLastSuccess = false
    /// Set while `nfs_service` runs; RPC-layer failures (EFAULT) met then wait in
    /// `transportFailures` until it returns, since libnfs fails the calls of a broken
    /// connection inside the very call that then reports the break.
    private var servicing = false
    private var transportFailures: [(request: EngineRequest, status: Int32, text: String?)] = []
    private var nextDeadlineCheck = ContinuousClock.now
    private let leaseRenewal: Duration?
    private var lastLeaseRenewal = ContinuousClock.now
    /// An early mount's state, kept until the context is destroyed (its callback's private data).
    private let mount: PendingMount?
    /// True until that mount has ended: only ``EngineRequest/runsBeforeMount`` requests start meanwhile.
    private var awaitingMount: Bool

    init(nfs: OpaquePointer, window: Int, timeout: Duration?, noDelay: Bool, leaseRenewal: Duration?,
         mount: PendingMount?, shared: Locked<Engine.Shared>, wake: WakePipe) {
        self.nfs = nfs
        self.mount = mount
        self.awaitingMount = mount != nil
        self.window = window
        self.timeout = timeout
        self.noDelay = noDelay
        self.leaseRenewal = leaseRenewal
        self.shared = shared
        self.wake = wake
    }

    func run() {
        Self.blockBrokenPipe()
        turns: while true {
            renewLeaseIfDue()
            switch nextTurn() {
            case .stop:
                break turns
            case .sleep:
                _ = Platform.poll(wake: wake.readDescriptor, descriptor: -1, events: 0, milliseconds: untilLeaseRenewal)
                wake.drain()
            case .work(let started):
                for request in started { start(request) }
                if dead {
                    _ = Platform.poll(wake: wake.readDescriptor, descriptor: -1, events: 0, milliseconds: -1)
                    wake.drain()
                } else if !inFlight.isEmpty || awaitingMount {
                    pollAndService(wake: wake.readDescriptor)
                    expireOverdue()
                }
                // Else all of them answered at once (an NFSv3 close): the next turn finds the loop idle.
            }
        }
        // Stopping: nothing new starts; libnfs fails what is in flight as it destroys the context.
        let queued = shared.withLock { $0.takeQueue() }
        for request in queued { request.finish(NFSContext.closedError(request.operation, request.path)) }
        for request in parkedCloses { request.finish(NFSContext.closedError(request.operation, request.path)) }
        parkedCloses.removeAll()
        destroying = true
        Syscalls.destroyContext(nfs)
        for request in inFlight.values { request.finish(NFSContext.closedError(request.operation, request.path)) }
        inFlight.removeAll()
    }

    private enum Turn {
        case stop
        /// Nothing to do, or a caller drives the context: wait for the wake-up pipe, touching nothing else.
        case sleep
        /// Start these (possibly none) and serve the connection.
        case work([EngineRequest])
    }

    /// The next requests to start, within the window.
    private func nextTurn() -> Turn {
        shared.withLock { shared in
            if shared.driven { return .sleep }
            if shared.stopping { return .stop }
            shared.wakePending = false
            let room = dead ? 0 : max(window - inFlight.count, 0)
            var taken: [EngineRequest]
            if awaitingMount {
                // Path calls keep their place in the queue until the mount has ended.
                taken = Array(shared.queue.lazy.filter(\.runsBeforeMount).prefix(room))
                let started = Set(taken.map(ObjectIdentifier.init))
                shared.queue.removeAll { started.contains(ObjectIdentifier($0)) }
            } else {
                let count = min(room, shared.queue.count)
                taken = Array(shared.queue.prefix(count))
                shared.queue.removeFirst(count)
            }
            shared.contextFree = taken.isEmpty && isIdle
            return shared.contextFree ? .sleep : .work(taken)
        }
    }

    /// Queues a lease renewal when one is due (NFSv4). libnfs offers no RENEW,
    /// but an OPEN carries the client ID, and the server renews the lease of
    /// any call that does, even one that fails: the renewal opens a name that
    /// does not exist (and closes it, should it exist). Only the queue is
    /// touched here, so a caller driving the context meanwhile is not disturbed.
    private func renewLeaseIfDue() {
        guard let leaseRenewal, !dead, ContinuousClock.now - lastLeaseRenewal >= leaseRenewal else { return }
        lastLeaseRenewal = .now
        let path = FilePath("/.swift-libnfs-lease-renewal-\(UInt64.random(in: 0 ... .max))")
        let shared = shared
        let renewal = Request<Void>("renew lease", path: path, issue: { nfs, pd in
            Syscalls.openAsync(nfs, path, flags: O_RDONLY, mode: 0, pd)
        }, success: { _, data in
            if let data { shared.withLock { $0.queue.append(Operations.close(FilePointer(raw: OpaquePointer(data)), path)) } }
        })
        shared.withLock { $0.queue.append(renewal) }
    }

    /// How long an idle service thread may sleep before a lease renewal is due (-1: without end).
    private var untilLeaseRenewal: Int32 {
        guard let leaseRenewal, !dead else { return -1 }
        let left = leaseRenewal - (ContinuousClock.now - lastLeaseRenewal)
        return max(left.pollMilliseconds, 1)
    }

    /// Nothing in flight on a live context; read by the thread that holds the context.
    var isIdle: Bool { inFlight.isEmpty && !dead && !awaitingMount }

    /// One poll of the connection (and of `wakeDescriptor`, unless negative), then `nfs_service`.
    private func pollAndService(wake wakeDescriptor: Int32) {
        let descriptor = prepareConnection()
        let events = descriptor >= 0 ? Syscalls.whichEvents(nfs) : 0
        var revents = Platform.poll(wake: wakeDescriptor, descriptor: descriptor, events: events,
                                    milliseconds: 100, watchingHangup: true)
        if revents > 0 && revents & Platform.hangupEvents != 0 {
            lastBreak = .now
            brokenSinceLastSuccess = true
            revents &= ~Platform.peerClosedEvent
        }
        if wakeDescriptor >= 0 { wake.drain() }
        // Also with no events: that is the tick in which libnfs expires timed-out calls.
        servicing = true
        let serviced = Syscalls.service(nfs, revents: revents)
        servicing = false
        if awaitingMount { followMount(serviceFailed: serviced < 0) }
        if serviced < 0 { failInFlight() }
        let failures = transportFailures
        transportFailures.removeAll()
        for failure in failures {
            failure.request.finish(error(for: failure.request, status: failure.status, message: failure.text,
                                         serviceFailed: serviced < 0))
        }
    }

    /// Runs one request on the calling thread, which holds the context (see
    /// the sync `Engine.perform`), until it is finished. A request the deadline failed
    /// stays in flight; the service thread serves it once the context is back.
    ///
    /// It drives only while no other request waits: one that is submitted meanwhile
    /// wakes this thread (through the wake-up pipe, which the service thread also
    /// watches), which then hands the context back, so that the service thread
    /// keeps every caller's requests in flight together, this one's included.
    func drive(_ request: EngineRequest) {
        start(request)
        while !dead && !request.lock.withLock({ request.isFinished }) {
            pollAndService(wake: wake.readDescriptor)
            expireOverdue()
            if shared.withLock({ !$0.queue.isEmpty }) { return }
        }
    }

    /// Sets up each new connection's socket once: Nagle off (unless asked
    /// otherwise) and, where libnfs needs it, whole sends (``VersionQuirks/needsWholeSends``),
    /// before anything is sent on it. Returns the connection's descriptor.
    @discardableResult
    private func prepareConnection() -> Int32 {
        let descriptor = Syscalls.descriptor(nfs)
        guard descriptor >= 0, let connection = Platform.inode(ofDescriptor: descriptor),
              connection != preparedConnection else { return descriptor }
        if VersionQuirks.needsWholeSends {
            // Still connecting (a reconnect): libnfs sends nothing before it is connected; the next turn sees to it.
            guard Platform.isConnected(descriptor) else { return descriptor }
            Platform.makeSendsWhole(descriptor, within: timeout ?? .seconds(60))
        }
        if noDelay { Platform.setNoDelay(descriptor) }
        preparedConnection = connection
        return descriptor
    }

    private func start(_ request: EngineRequest) {
        if request.runsInline { return request.runInline(nfs) }
        if let file = request.closesFile, inFlight.values.contains(where: { $0.file == file }) {
            Engine.closesHeldBack.add(1, ordering: .relaxed)
            return parkedCloses.append(request)
        }
        // libnfs 5.x may send a request from within the call that queues it.
        prepareConnection()
        let privateData = Unmanaged.passRetained(request).toOpaque()
        request.loop = self
        request.connection = Syscalls.connectionIdentity(nfs)
        guard let rc = request.start(nfs, privateData) else {
            Unmanaged<EngineRequest>.fromOpaque(privateData).release()
            return
        }
        if rc < 0 {
            Unmanaged<EngineRequest>.fromOpaque(privateData).release()
            request.finish(error(for: request, status: rc, message: Syscalls.errorText(nfs)))
        } else if !request.calledBack {
            inFlight[ObjectIdentifier(request)] = request
        }
    }

    /// Queues (first) the closes of `file` held back for it, once nothing in flight uses it;
    /// the next turn starts them, outside libnfs's callback.
    private func releaseCloses(of file: OpaquePointer) {
        guard !inFlight.values.contains(where: { $0.file == file }) else { return }
        let ready = parkedCloses.filter { $0.closesFile == file }
        guard !ready.isEmpty else { return }
        parkedCloses.removeAll { $0.closesFile == file }
        shared.withLock { $0.queue.insert(contentsOf: ready, at: 0) }
    }

    /// libnfs's callback for `request` (from ``EngineCallback`` or ``HandleCallback``);
    /// `message`, when given, is the failure's text (a handle call's reply carries no libnfs text).
    func callback(_ request: EngineRequest, status: Int32, data: UnsafeMutableRawPointer?, message: String? = nil) {
        request.calledBack = true
        inFlight.removeValue(forKey: ObjectIdentifier(request))
        if let file = request.file, !parkedCloses.isEmpty { releaseCloses(of: file) }
        if destroying {
            request.finish(NFSContext.closedError(request.operation, request.path))
        } else if status >= 0 {
            brokenSinceLastSuccess = false
            request.succeed(status: status, data: data)
        } else {
            // A call the RPC layer failed (EFAULT) or timed out or cancelled (EINTR)
            // has its text in `data` (libnfs 4.x-7.x, v3 and v4), while the context's
            // text may be an older call's. For other failures libnfs sets the context's
            // text just before the callback, and `data` is not always text (6.0.2 passes a READ3res).
            let dataText = data.map { Syscalls.text(UnsafePointer($0.assumingMemoryBound(to: CChar.self))) }
            let contextText = Syscalls.errorText(nfs).flatMap { $0.isEmpty ? nil : $0 }
            let text = message ?? (status == -EFAULT || status == -EINTR ? dataText ?? contextText : contextText ?? dataText)
            if servicing && status == -EFAULT {
                transportFailures.append((request, status, text))
            } else {
                request.finish(error(for: request, status: status, message: text))
            }
        }
    }

    /// A failure is a lost connection when the call's socket was replaced under
    /// it, or the peer closed or refused the connection while it was out or
    /// before it, with no call answered since.
    ///
    /// `serviceFailed`: the failure came inside an `nfs_service` that then failed, which
    /// before the call's timeout ran out means the connection broke under it (after it,
    /// libnfs gave up reconnecting after a timeout: a timeout).
    private func error(for request: EngineRequest, status: Int32, message: String?,
                       serviceFailed: Bool = false) -> NFSError {
        // A replaced socket means a broken connection for an RPC-layer failure on every
        // version, and for a timeout where libnfs does not reconnect on timeouts itself.
        let socketChanged = request.connection.map { $0 != Syscalls.connectionIdentity(nfs) } ?? false
        let brokeEarly = serviceFailed && (timeout.map { .now - request.created < $0 } ?? true)
        let changed = socketChanged && (VersionQuirks.watchesConnection || status == -EFAULT)
            || lastBreak.map { $0 >= request.created } ?? false
            || brokenSinceLastSuccess || brokeEarly
        return NFSError.fromLibNFS(result: status, operation: request.operation, path: request.path, message: message,
                                   elapsed: .now - request.created, timeout: timeout, connectionChanged: changed)
    }

    /// After each `nfs_service` of an early mount: notes the root handle once the MNT
    /// reply has given it, and when the mount has ended, lets path calls start, or
    /// fails them (and every later call) with the mount's error.
    private func followMount(serviceFailed: Bool) {
        guard let mount else { return }
        if serviceFailed { mount.end(status: -EIO, text: "nfs_service failed") }
        mount.noteRootHandle(nfs)
        guard let result = mount.result else { return }
        awaitingMount = false
        guard result.status < 0 else { return }
        let failure = NFSError.fromLibNFS(result: result.status, operation: "mount", path: nil, message: result.text,
                                          elapsed: .now - mount.started, timeout: timeout)
        let queued = shared.withLock { shared in
            shared.lost = true
            return shared.takeQueue()
        }
        for request in queued {
            var error = failure
            (error.operation, error.path) = (request.operation, request.path)
            error.detail = "the mount failed: " + (failure.detail ?? failure.reason)
            request.finish(error)
        }
    }

    /// `nfs_service` failed: the connection is gone and libnfs cannot use the context again.
    private func failInFlight() {
        dead = true
        let queued = shared.withLock { shared in
            shared.lost = true
            return shared.takeQueue()
        }
        let failed = Array(inFlight.values) + parkedCloses
        inFlight.removeAll()
        parkedCloses.removeAll()
        for request in failed {
            request.finish(error(for: request, status: -EIO, message: "nfs_service failed"))
        }
        for request in queued { request.finish(Engine.lostError(request.operation, request.path)) }
    }

    /// Fails requests whose timeout has passed by two seconds more, in flight or
    /// still queued (libnfs scans for expired calls once a second, and API v2
    /// resends them without end). A request failed here stays in the window
    /// until libnfs calls back; its caller's memory is no longer touched.
    private func expireOverdue() {
        guard let timeout else { return }
        let now = ContinuousClock.now
        guard now >= nextDeadlineCheck else { return }
        nextDeadlineCheck = now + .milliseconds(100)
        let limit = timeout + .seconds(2)
        if awaitingMount, let mount, now - mount.started > limit {
            mount.end(status: -ETIMEDOUT, text: nil)
            followMount(serviceFailed: false)
        }
        let overdue = inFlight.values.filter { now - $0.created > limit }
        let queued = shared.withLock { shared in
            let late = shared.queue.filter { now - $0.created > limit }
            if !late.isEmpty { shared.queue.removeAll { now - $0.created > limit } }
            return late
        }
        for request in overdue + queued {
            // A timeout, or a lost connection if it broke meanwhile (libnfs 6+ retry it without end).
            request.finish(error(for: request, status: -ETIMEDOUT, message: nil))
        }
    }

    /// SIGPIPE from a send to a closed connection goes to the sending thread:
    /// blocked here, libnfs sees EPIPE instead of the process dying (5.x-7.x send with writev).
    private static func blockBrokenPipe() {
        var pipe = sigset_t()
        sigemptyset(&pipe)
        sigaddset(&pipe, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipe, nil)
    }
}

import Dispatch
import Logging
import SystemPackage
internal import CLibNFS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mounted NFS share: libnfs-python's `NFS`, with errors that throw, a
/// bounded timeout, thread safety and an explicit ``close()``.
///
/// ```swift
/// let nfs = try NFSContext(url: "nfs://127.0.0.1/srv/share?version=3")
/// defer { try? nfs.close() }
/// for name in try nfs.listdir("/") { print(name) }
/// let text = try nfs.withFile("/hello.txt") { try $0.readAll() }
/// ```
///
/// Paths given to its methods are relative to the export the URL names; `/`
/// is the export's root.
///
/// ## Concurrency
/// libnfs contexts are not thread-safe, so after the mount one service thread
/// per context owns it (the *engine*) and every call becomes one of libnfs's
/// `_async` calls, submitted to that thread. Many threads and tasks may share
/// a context; their requests go out together on its one connection, up to
/// ``NFSOptions/maxRequestsInFlight`` at a time. Each method has a synchronous
/// form, which blocks its thread until the reply (on an idle engine it drives
/// its request on that thread), and an `async` form of the
/// same name, chosen by `await`, which suspends its task instead and ends
/// with `CancellationError` when the task is cancelled:
///
/// ```swift
/// let nfs = try await NFSContext(url: url)
/// let sizes = try await withThrowingTaskGroup(of: UInt64.self) { group in
///     for name in try await nfs.listdir("/") {
///         group.addTask { try await nfs.stat(FilePath("/").appending(name)).size }
///     }
///     return try await group.reduce(0, +)
/// }
/// try await nfs.close()
/// ```
///
/// ## Lost connections
/// libnfs reconnects by itself when a connection breaks (a server restart),
/// and requeues the calls in flight. When a call fails because the connection
/// broke and could not be restored (within ``NFSOptions/timeout``, or at all
/// with auto-reconnect off), the context counts as lost: later calls fail at once with `ECONNRESET` instead of each waiting a
/// whole timeout, and ``close()`` skips the unmount RPC. Mount again to go on.
///
/// ## Lifetime
/// Each ``NFSFileHandle`` keeps its context alive. ``close()`` closes the
/// handles still open, unmounts and releases libnfs's context; after it, every
/// call throws `EBADF`. `deinit` releases the context without an unmount RPC.
public final class NFSContext: Sendable {
    /// The URL this context was mounted from.
    public let url: String
    /// The parsed form of ``url``.
    public let parsedURL: NFSURL
    /// The largest read the server accepts in one RPC (FSINFO `rtmax`), in bytes.
    ///
    /// With ``NFSOptions/returnsAtRootHandle``, read before the mount's FSINFO has
    /// answered, it waits for that reply; it is 0 when that FSINFO failed, as for a
    /// server that gives none (libnfs's own FSINFO, on the same connection, has then
    /// most likely failed too, and with it the context's calls).
    public var readMax: Int { transferSizes.value.readMax }
    /// The largest write the server accepts in one RPC (FSINFO `wtmax`), in bytes
    /// (waiting as ``readMax`` does).
    public var writeMax: Int { transferSizes.value.writeMax }
    /// ``readMax`` and ``writeMax``, or their reply still to come.
    private let transferSizes: TransferSizes
    /// The size of the READ RPCs this context sends: ``readMax``, at most
    /// ``largestRPC``, and 64 KiB where the server gave none.
    public var readSize: Int { Self.rpcSize(readMax) }
    /// The size of the WRITE RPCs this context sends: ``writeMax``, at most
    /// ``largestRPC``, and 64 KiB where the server gave none.
    public var writeSize: Int { Self.rpcSize(writeMax) }
    /// How often an NFSv4 context renews its lease, busy or idle: libnfs's v4
    /// client never sends RENEW, so a context that opened nothing for a lease
    /// period (60 s on Ganesha, 90 s on Linux's server) found its client ID
    /// expired (`NFS4ERR_EXPIRED`) and could open nothing more.
    static let leaseRenewal: Duration = .seconds(10)

    /// The largest RPC this package sends, 1 MiB as the Linux kernel's client:
    /// over NFSv4 servers offer far more (NFS-Ganesha: 8 MiB reads, 64 MiB
    /// writes), and buffers sized by those cost hundreds of MiB per file while
    /// one huge RPC in flight does not go faster than several of 1 MiB.
    public static let largestRPC = 1 << 20

    private static func rpcSize(_ serverMax: Int) -> Int {
        serverMax > 0 ? min(serverMax, largestRPC) : 65536
    }
    /// The options this context was mounted with.
    public let options: NFSOptions
    /// The NFS protocol version in use: the options', else the URL's, else v3.
    public let version: NFSOptions.Version
    /// How far a file handle reads ahead of a sequential reader, in bytes: the
    /// options' ``NFSOptions/readahead``, else the URL's `readahead`, else 8 × ``readSize``.
    public var readAhead: Int { chosenReadAhead ?? readSize * NFSFileHandle.readAheadRequests }
    /// The options' or the URL's read-ahead.
    private let chosenReadAhead: Int?
    /// Whether paths cross into exports nested below this one (libnfs's
    /// `auto-traverse-mounts`): the options' ``NFSOptions/traversesNestedExports``,
    /// else the URL's `auto-traverse-mounts`, else true.
    public let traversesNestedExports: Bool
    /// The export's root handle as the mount found it (empty over NFSv4).
    let rootHandleBytes: [UInt8]
    /// The connection's round trip as the mount saw it: the time until this context was
    /// returned over the calls made one after another meanwhile (five, or an early mount's
    /// three), so at least the real round trip (and no less than one).
    let mountRoundTrip: Duration

    /// How far a sequential reader's READs run ahead: ``readAhead``, but no more
    /// than 2 GB/s fills in the mount's round trip (``mountRoundTrip``), and at least
    /// ``streamMinimumRequests`` READs. Bytes read ahead are fresh memory the
    /// kernel faults in page by page: on plain loopback a 256 MiB download took
    /// 130 ms with 16 MiB ahead and 110 ms with 4 MiB (7 700 page faults against
    /// 3 300), while a 10 ms link needs the 16 MiB.
    var streamReadAhead: Int {
        let (seconds, attoseconds) = mountRoundTrip.components
        let nanoseconds = Double(seconds) * 1e9 + Double(attoseconds) / 1e9
        let carried = Int(min(nanoseconds * Self.assumedBytesPerNanosecond, Double(Int32.max)))
        return min(readAhead, max(carried, readSize * Self.streamMinimumRequests))
    }
    /// 2 GB/s: more than this package moves through one connection on loopback.
    static let assumedBytesPerNanosecond = 2.0
    static let streamMinimumRequests = 4

    /// The service thread that owns the libnfs context after the mount.
    let engine: Engine
    private let handles = Locked<[ObjectIdentifier: WeakFileHandle]>([:])
    /// File handles dropped unclosed, still being flushed and closed in the background.
    let backgroundCloses = DispatchGroup()

    struct WeakFileHandle: @unchecked Sendable {
        weak var handle: NFSFileHandle?
    }

    static let logger = Logger(label: "LibNFS")

    /// Mounts the export that `url` names (`nfs://server/export/path?arg=val…`).
    ///
    /// Maps `nfs_init_context`, `nfs_parse_url_incomplete` (the query) and `nfs_mount` (on libnfs
    /// 6.x, `nfs_mount_async`, driven on the calling thread: see the README's
    /// version notes).
    ///
    /// An NFSv3 mount that crosses no nested exports (``NFSOptions/traversesNestedExports``
    /// false, or the URL's `auto-traverse-mounts=0`) returns sooner on libnfs 4.x-5.x: once the
    /// MNT reply has given the export's root handle and an FSINFO sent beside libnfs's NULL
    /// has given the transfer sizes, three round trips where libnfs's mount takes five.
    /// libnfs's last two calls (FSINFO, GETATTR of the root) then finish on the context's
    /// service thread; calls by path wait for them, and fail with their error should they fail.
    /// With ``NFSOptions/returnsAtRootHandle`` it returns at the MNT reply, two round trips
    /// in, and the transfer sizes arrive with the first calls.
    /// - Throws: ``NFSError`` with `EINVAL` for a malformed URL, the server's
    ///   error (such as `ENOENT` or `EACCES`) for an export it refuses,
    ///   `ECONNREFUSED` when nothing listens, and a timeout error when the
    ///   server does not answer within ``NFSOptions/timeout``.
    public init(url: String, options: NFSOptions = .init()) throws {
        let parsed = try NFSURL(url)
        let version = options.version?.rawValue ?? parsed.argument("version").flatMap { Int32($0) } ?? 3
        if version == 4 && !NFSLibrary.supportsNFSv4 {
            throw NFSError(code: .protocolNotSupported, operation: "mount", url: url,
                           detail: "NFSv4 needs libnfs 7.0.0 or later; this process runs \(NFSLibrary.description), "
                               + "whose v4 client cannot be trusted with data (use version=3)")
        }
        guard let nfs = Syscalls.initContext() else {
            throw NFSError(code: .noMemory, operation: "mount", url: url, detail: "nfs_init_context failed")
        }
        let traverses = options.traversesNestedExports
            ?? parsed.argument("auto-traverse-mounts").map { $0 != "0" } ?? true
        do {
            try Self.apply(parsed, options, to: nfs)
        } catch {
            Syscalls.destroyContext(nfs)
            throw error
        }
        // Either takes `nfs` over, destroying it on failure.
        let mounted = version == 3 && !traverses && Syscalls.apiVersion < 2
            ? try Self.mountEarly(nfs, url: parsed, options: options)
            : try Self.mount(nfs, url: parsed, version: version, options: options)
        (engine, rootHandleBytes, transferSizes) = (mounted.engine, mounted.root, mounted.sizes)
        mountRoundTrip = mounted.roundTrip
        self.url = url
        self.parsedURL = parsed
        self.options = options
        self.version = version == 4 ? .v4 : .v3
        self.chosenReadAhead = options.readahead ?? parsed.argument("readahead").flatMap { Int($0) }
        self.traversesNestedExports = traverses
    }

    /// What a mount gives the context.
    private typealias Mounted = (engine: Engine, root: [UInt8], sizes: TransferSizes, roundTrip: Duration)

    /// libnfs's mount, to its end, on the calling thread; the engine starts after it.
    /// Takes `nfs` over: destroys it on failure.
    private static func mount(_ nfs: OpaquePointer, url: NFSURL, version: Int32, options: NFSOptions) throws -> Mounted {
        do {
            let start = ContinuousClock.now
            let (rc, message) = BrokenPipeShield.run {
                VersionQuirks.mountRetransmits
                    ? RetransmittingMount.mount(nfs, server: url.host, export: url.filePath)
                    : (Syscalls.mount(nfs, server: url.host, export: url.filePath), Syscalls.errorText(nfs))
            }
            if rc < 0 {
                throw mountError(rc, message: message, url: url, version: version,
                                 elapsed: .now - start, timeout: options.effectiveTimeout)
            }
            let (readMax, writeMax) = (Int(Syscalls.readMax(nfs)), Int(Syscalls.writeMax(nfs)))
            let root = version == 4 ? [] : Syscalls.rootHandleBytes(nfs)
            let duration = ContinuousClock.now - start
            let engine = try Engine(nfs: nfs, window: options.maxRequestsInFlight, timeout: options.effectiveTimeout,
                                    noDelay: options.noDelay, leaseRenewal: version == 4 ? leaseRenewal : nil)
            return (engine, root, TransferSizes(readMax: readMax, writeMax: writeMax), duration / 5)
        } catch {
            Syscalls.destroyContext(nfs)
            throw error
        }
    }

    /// The mount of an NFSv3 export without nested exports to cross, on libnfs 4.x-5.x:
    /// the engine drives libnfs's mount, and this returns once the MNT reply has given the
    /// root handle and an FSINFO of this package's own, sent beside the mount's NULL, has
    /// given the transfer sizes (or, with ``NFSOptions/returnsAtRootHandle``, once that FSINFO
    /// is sent); the mount's own FSINFO and GETATTR are still out then, and
    /// path calls wait for them (see ``PendingMount``). Takes `nfs` over: destroys it on failure.
    private static func mountEarly(_ nfs: OpaquePointer, url: NFSURL, options: NFSOptions) throws -> Mounted {
        let start = ContinuousClock.now
        let timeout = options.effectiveTimeout
        let mount = PendingMount()
        let started = BrokenPipeShield.run { mount.start(nfs, server: url.host, export: url.filePath) }
        guard started else {
            let message = Syscalls.errorText(nfs)
            Syscalls.destroyContext(nfs)
            throw mountError(-EIO, message: message, url: url, version: 3, elapsed: .now - start, timeout: timeout)
        }
        let engine: Engine
        do {
            engine = try Engine(nfs: nfs, window: options.maxRequestsInFlight, timeout: timeout,
                                noDelay: options.noDelay, mount: mount)
        } catch {
            Syscalls.destroyContext(nfs)
            throw error
        }
        do {
            guard let root = mount.waitForRootHandle() else { throw NFSError(code: .ioError, operation: "mount") }
            if options.returnsAtRootHandle {
                let sizes = TransferSizes()
                engine.submit(Operations.fsinfo(root: root).whenDone { reply in
                    sizes.arrive(reply.flatMap { reply in Result { try transferSizes(reply, url: url) } })
                })
                return (engine, root, sizes, (.now - start) / 2)
            }
            let sizes = try transferSizes(engine.perform(Operations.fsinfo(root: root)), url: url)
            return (engine, root, TransferSizes(readMax: sizes.readMax, writeMax: sizes.writeMax), (.now - start) / 3)
        } catch {
            engine.shutdown()
            if let result = mount.result, result.status < 0 {
                throw mountError(result.status, message: result.text, url: url, version: 3,
                                 elapsed: .now - start, timeout: timeout)
            }
            guard var error = error as? NFSError else { throw error }
            (error.operation, error.path, error.url) = ("mount", nil, url.description)
            throw error
        }
    }

    /// An FSINFO reply's READ and WRITE sizes, as libnfs takes them from its own
    /// (cut to ``largestXfer``; below 8 KiB refused).
    private static func transferSizes(_ reply: (readMax: UInt32, writeMax: UInt32),
                                      url: NFSURL) throws -> (readMax: Int, writeMax: Int) {
        let (readMax, writeMax) = (min(Int(reply.readMax), largestXfer), min(Int(reply.writeMax), largestXfer))
        guard readMax >= 8192, writeMax >= 8192 else {
            throw NFSError(code: .invalidArgument, operation: "mount", url: url.description,
                           detail: "the server's largest READ or WRITE is below 8 KiB (\(readMax), \(writeMax))")
        }
        return (readMax, writeMax)
    }

    /// libnfs 4.x-5.x's `NFS_MAX_XFER_SIZE`, to which they cut the server's READ and WRITE sizes.
    private static let largestXfer = 1 << 20

    /// Mounts like ``init(url:options:)`` without blocking a thread of Swift's
    /// cooperative pool: the mount (libnfs's synchronous one, before the
    /// engine exists) runs on a thread of its own, started for it.
    /// - Throws: ``NFSError``, as ``init(url:options:)``; `CancellationError`
    ///   when the task was cancelled before the mount began.
    public convenience init(url: String, options: NFSOptions = .init()) async throws {
        try Task.checkCancellation()
        let mounted = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<NFSContext, any Error>) in
            do {
                try ServiceThread.detached {
                    continuation.resume(with: Result { try NFSContext(url: url, options: options) })
                }
            } catch {
                continuation.resume(throwing: error)
            }
        }
        self.init(taking: mounted)
    }

    /// Takes over the engine of a context mounted on another thread (which is then dropped unused).
    private init(taking other: NFSContext) {
        url = other.url
        parsedURL = other.parsedURL
        transferSizes = other.transferSizes
        options = other.options
        version = other.version
        chosenReadAhead = other.chosenReadAhead
        traversesNestedExports = other.traversesNestedExports
        rootHandleBytes = other.rootHandleBytes
        mountRoundTrip = other.mountRoundTrip
        engine = other.engine
    }

    /// Closes open file handles (flushing them), unmounts (unless
    /// ``NFSOptions/unmountsOnClose`` is false) and releases the context.
    ///
    /// Handles dropped without ``NFSFileHandle/close()`` are flushed and closed
    /// in the background; this waits for them first.
    ///
    /// Safe to call more than once. Maps `nfs_umount` and `nfs_destroy_context`.
    /// - Throws: the first error met while flushing a handle or unmounting;
    ///   the context is released either way.
    public func close() throws {
        backgroundCloses.wait()
        var firstError: (any Error)?
        for handle in openHandles {
            do { try handle.close() } catch { if firstError == nil { firstError = error } }
        }
        if let umount = unmountRequest {
            do { try run(umount) } catch { firstError = firstError ?? Self.unmountFailure(error) }
        }
        engine.shutdown()
        if let firstError { throw firstError }
    }

    /// ``close()`` without blocking the task's thread while handles flush and the unmount RPC runs.
    /// - Throws: as ``close()``.
    public func close() async throws {
        await withCheckedContinuation { continuation in
            backgroundCloses.notify(queue: .global()) { continuation.resume() }
        }
        var firstError: (any Error)?
        for handle in openHandles {
            do { try await handle.close() } catch { if firstError == nil { firstError = error } }
        }
        if let umount = unmountRequest {
            do { try await run(umount) } catch { firstError = firstError ?? Self.unmountFailure(error) }
        }
        engine.shutdown()
        if let firstError { throw firstError }
    }

    private var openHandles: [NFSFileHandle] { handles.withLock { $0.values.compactMap(\.handle) } }

    /// The UMNT to send on close; nil when the options skip it, or the context is closed or its
    /// connection lost (UMNT is a courtesy to the server; with the connection gone it could only
    /// wait out the timeout).
    private var unmountRequest: Request<Void>? {
        guard options.unmountsOnClose, !engine.isStopped, !engine.isLost else { return nil }
        return Operations.status("umount", nil) { nfs, pd in
            let rc = Syscalls.umountAsync(nfs, pd)
            // libnfs 6.x drop the NFS connection for one to the MOUNT port, which
            // starts with no retransmission: the flaw `RetransmittingMount` works
            // around would fail its UMNT at the first timeout scan. The engine
            // bounds the call itself.
            if rc == 0, VersionQuirks.mountRetransmits {
                Syscalls.setMountRetransmits(nfs, timeoutMilliseconds: Syscalls.timeout(nfs))
            }
            return rc
        }
    }

    /// An unmount's error, or nil when libnfs did unmount despite it (see ``VersionQuirks``).
    private static func unmountFailure(_ error: any Error) -> (any Error)? {
        if let error = error as? NFSError, VersionQuirks.unmountSucceeded(despite: error) { return nil }
        return error
    }

    /// An identifier of the connection to the server's NFS port, which changes
    /// whenever libnfs reconnects (a server restart, a cut connection); nil
    /// once closed.
    ///
    /// NFSv3 writes stay unstable until a COMMIT, and a server that restarts
    /// in between may lose them while the COMMIT succeeds; libnfs does not
    /// compare the write verifiers that would reveal it (checked in its 4.0.0
    /// and 5.0.3 sources). Comparing this value from before the first write with its
    /// value after the COMMIT tells whether that can have happened: nfs-cp
    /// writes the file again when it has.
    public var connectionIdentity: UInt64? {
        try? engine.perform(Request("connection", inline: Syscalls.connectionIdentity)) ?? nil
    }

    /// True once a call has failed on a broken connection that libnfs could not
    /// restore (see "Lost connections" above): every later call fails at once.
    public var isConnectionLost: Bool { engine.isLost }

    /// True once ``close()`` has run.
    public var isClosed: Bool { engine.isStopped }

    /// Runs one request on the engine, blocking this thread until it ends.
    @discardableResult
    func run<T: Sendable>(_ request: Request<T>) throws -> T {
        do { return try engine.perform(request) } catch { throw noted(error) }
    }

    /// Runs one request on the engine, suspending this task until it ends.
    @discardableResult
    func run<T: Sendable>(_ request: Request<T>) async throws -> T {
        do { return try await engine.perform(request) } catch { throw noted(error) }
    }

    /// libnfs reconnects inside a call (a restart goes unnoticed); a call that still
    /// fails on the connection means it could not, so the next would only wait again.
    func noted(_ error: any Error) -> any Error {
        if let error = error as? NFSError, error.code == .connectionReset { engine.markLost() }
        return error
    }

    func register(_ handle: NFSFileHandle) {
        handles.withLock { $0[ObjectIdentifier(handle)] = WeakFileHandle(handle: handle) }
    }

    func unregister(_ id: ObjectIdentifier) {
        handles.withLock { _ = $0.removeValue(forKey: id) }
    }

    static func closedError(_ operation: String, _ path: FilePath?) -> NFSError {
        NFSError(code: .badFileDescriptor, operation: operation, path: path, detail: "the NFS context is closed")
    }

    /// Numbers the contexts of this process, for their NFSv4 client names.
    private static let contextSerial = Locked<UInt64>(0)

    private static func apply(_ url: NFSURL, _ options: NFSOptions, to nfs: OpaquePointer) throws {
        // libnfs applies a URL's arguments only while parsing it. The query alone
        // goes through its parser, under a placeholder host: the host and the path
        // are handed to nfs_mount as they are (the path's bytes decoded here,
        // since libnfs versions disagree on escapes; the host without brackets,
        // which libnfs cannot resolve).
        // `readahead` is this package's own (see NFSOptions.readahead): libnfs's read-ahead
        // corrupts concurrent reads of one file (libnfs 4.0.0 failed them with EEXIST).
        let query = url.query.split(separator: "&").filter { !$0.hasPrefix("readahead=") }.joined(separator: "&")
        if !query.isEmpty && !Syscalls.applyURLArguments(nfs, query: query) {
            throw NFSError(code: .invalidArgument, operation: "mount", url: url.description,
                           detail: "libnfs refused the URL's arguments", libnfsMessage: Syscalls.errorText(nfs))
        }
        // libnfs names its NFSv4 client "Libnfs pid:PID SECONDS", so two contexts made in
        // the same second share one client ID, and the second's SETCLIENTID makes the
        // server expire the first's state (NFS4ERR_EXPIRED on its next OPEN). A name of
        // its own per context keeps them apart; NFSv3 ignores it.
        let serial = contextSerial.withLock { value -> UInt64 in value += 1; return value }
        Syscalls.setClientName(nfs, "swift-libnfs pid:\(getpid()) context:\(serial) \(UInt64.random(in: 0...UInt64.max))")
        if let version = options.version, Syscalls.setVersion(nfs, version.rawValue) < 0 {
            throw NFSError(code: .invalidArgument, operation: "mount", url: url.description,
                           detail: "unsupported NFS version \(version.rawValue)", libnfsMessage: Syscalls.errorText(nfs))
        }
        if let ms = options.timeoutMilliseconds { Syscalls.setTimeout(nfs, milliseconds: ms) }
        if let uid = options.uid { Syscalls.setUID(nfs, Int32(clamping: uid)) }
        if let gid = options.gid { Syscalls.setGID(nfs, Int32(clamping: gid)) }
        if let traverses = options.traversesNestedExports,
           !Syscalls.applyURLArguments(nfs, query: "auto-traverse-mounts=\(traverses ? 1 : 0)") {
            throw NFSError(code: .invalidArgument, operation: "mount", url: url.description,
                           detail: "libnfs refused auto-traverse-mounts", libnfsMessage: Syscalls.errorText(nfs))
        }
        if let retries = options.autoreconnect { Syscalls.setAutoreconnect(nfs, Int32(clamping: retries)) }
        if let size = options.readdirBufferSize {
            guard Syscalls.hasReaddirBufferSetter else {
                throw NFSError(code: .invalidArgument, operation: "mount", url: url.description,
                               detail: "readdirBufferSize needs libnfs 5.0 or later; this process runs \(NFSLibrary.description)")
            }
            guard let count = UInt32(exactly: size), count > 0 else {
                throw NFSError(code: .invalidArgument, operation: "mount", url: url.description,
                               detail: "readdirBufferSize takes 1 to \(UInt32.max) bytes, not \(size)")
            }
            Syscalls.setReaddirBuffer(nfs, dircount: count, maxcount: count)
        } else if url.argument("readdir-buffer") == nil && Syscalls.hasReaddirBufferSetter {
            let count = UInt32(NFSOptions.defaultReaddirBufferSize)
            Syscalls.setReaddirBuffer(nfs, dircount: count, maxcount: count)
        }
    }

    /// libnfs 4 reports a refused connection as a bare EIO ("nfs_service failed");
    /// a direct connect to the port it used tells the user what really happened.
    /// NFSv4 has no MOUNT protocol: its first connection is to the NFS port (2049 unless given).
    private static func mountError(_ rc: Int32, message: String?, url: NFSURL, version: Int32,
                                   elapsed: Duration, timeout: Duration?) -> NFSError {
        var error = NFSError.fromLibNFS(result: rc, operation: "mount", path: nil, url: url.description,
                                        message: message, elapsed: elapsed, timeout: timeout)
        guard [.ioError, .connectionRefused, .connectionReset].contains(error.code) else { return error }
        let port = version == 4 ? url.argument("nfsport").flatMap { UInt16($0) } ?? 2049
                                : url.argument("mountport").flatMap { UInt16($0) } ?? 111
        if let connectErrno = Reachability.connectError(host: url.host, port: port, timeoutMilliseconds: 2000) {
            error.code = connectErrno
            error.detail = "cannot connect to \(url.server) port \(port)"
                + (port == 111 ? " (rpcbind; give mountport= and nfsport= to skip it)" : "")
        }
        return error
    }
}

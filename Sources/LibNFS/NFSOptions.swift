/// Settings for a mount, given to ``NFSContext/init(url:options:)``.
///
/// URL arguments (`?uid=…&version=…`) are applied too; a value set here wins.
public struct NFSOptions: Sendable, Hashable {
    /// The NFS protocol version.
    public enum Version: Int32, Sendable, Hashable {
        /// NFSv3, the default and the version libnfs 4 supports fully.
        case v3 = 3
        /// NFSv4 (libnfs 4.0.0 marks its v4 client as not yet functional).
        case v4 = 4
    }

    /// How long any single operation, the mount included, may take before it
    /// throws an ``NFSError`` whose ``NFSError/isTimeout`` is true. `nil` waits
    /// forever (not recommended: a dead server then blocks the caller). Default 30 s.
    /// libnfs counts timeouts in whole seconds: a fraction is rounded up, and
    /// anything beyond about 24 days is clamped to that. libnfs 6 and later
    /// resend a timed-out RPC without end unless the URL says `retrans=0`, so
    /// there a server that stops answering is not yet bounded by this (issue 11).
    public var timeout: Duration? = .seconds(30)
    /// The user id sent to the server (`nfs_set_uid`); default: the URL's or the process's.
    public var uid: Int? = nil
    /// The group id sent to the server (`nfs_set_gid`).
    public var gid: Int? = nil
    /// The protocol version; default: the URL's, else v3.
    public var version: Version? = nil
    /// How far a file handle reads ahead of a sequential reader, in bytes;
    /// nil: the URL's `readahead`, else 8 × the context's `readSize` (the
    /// server's readMax, at most 1 MiB). LibNFS does it on every libnfs
    /// version: once a reader continues where its last read ended, READs of
    /// readSize go out ahead of it up to this many bytes, each one taken
    /// replaced by the next, so they stay in flight while the reader works.
    /// This is the most: where the mount showed a short round trip, fewer go
    /// ahead (what 2 GB/s fills in that round trip, at least 4 READs), since more
    /// only cost memory there. libnfs's own
    /// read-ahead (4.x-5.x) is never turned on: it breaks concurrent reads of
    /// one file.
    public var readahead: Int? = nil
    /// The most bytes one directory listing reply may carry (READDIRPLUS; libnfs's
    /// `readdir-buffer`, both of its counts). A listing costs a round trip per
    /// reply, and libnfs asks for 8 KiB, about 50 entries. nil: the URL's
    /// `readdir-buffer`, else ``defaultReaddirBufferSize``. libnfs 6.0 and later
    /// ask for no more than the server's preferred size (FSINFO's dtpref: 16 KiB
    /// for NFS-Ganesha). libnfs 4.x cannot change it: there nil keeps its 8 KiB,
    /// and a size set here is refused with `EINVAL`.
    public var readdirBufferSize: Int? = nil
    /// 64 KiB, about 300 entries a reply: a directory of 600 entries took 14
    /// READDIRPLUS round trips at libnfs's 8 KiB, and 3 at this with libnfs 5.0.3.
    public static let defaultReaddirBufferSize = 64 << 10
    /// Reconnect attempts after a broken connection: -1 forever, 0 never (`nfs_set_autoreconnect`).
    /// nil keeps the URL's `autoreconnect=` or libnfs's default (forever).
    public var autoreconnect: Int? = nil
    /// Size of a file handle's read buffer; nil uses the context's `readSize`.
    public var readBufferSize: Int? = nil
    /// Size of a file handle's write buffer; nil uses the context's `writeSize`.
    public var writeBufferSize: Int? = nil
    /// How many bytes of a file handle's sequential writes may be in flight
    /// while `write` returns (write-behind). 0, the default, makes every write
    /// that sends wait for the server's answer, so it throws its own errors.
    /// With more, a sequential writer keeps WRITEs in flight across calls (on a
    /// 10 ms round trip that hides most of the wait), and a WRITE that fails
    /// is thrown by the handle's next write, flush, fsync, stat or close.
    public var writeBehind: Int = 0
    /// With ``writeBehind``: after this many bytes of unstable WRITEs answered
    /// since the last COMMIT, a file sends one more without waiting for it, so
    /// the server's disk starts on the bytes while more arrive and the COMMIT
    /// of `fsync` or `close` has less left to flush (a 256 MiB upload on
    /// loopback took 0.73 s against 0.81 s with none). An early COMMIT's error
    /// is not thrown: the close's own COMMIT, sent after it, is what counts.
    /// At most one is out at a time. 0 turns them off. Default 32 MiB.
    public var commitInterval: Int = 32 << 20
    /// The most requests the context's engine keeps in flight on its
    /// connection at once; more wait in its queue. Large reads and writes
    /// are split into requests of readSize/writeSize, so this also bounds the
    /// bytes in flight (64 × 1 MiB with Ganesha's default). Default 64:
    /// servers offer about 128 slots per client, and more gained nothing at
    /// 10 ms round trip (see the README's latency table).
    public var maxRequestsInFlight: Int = 64
    /// Sets `TCP_NODELAY` on the connection (again after every reconnect), so
    /// a small request leaves at once while others are unanswered. libnfs
    /// itself never sets it. Default true.
    public var noDelay: Bool = true
    /// Whether ``NFSContext/close()`` tells an NFSv3 server that the share is
    /// no longer mounted (MOUNT's UMNT). The server keeps its list of mounts
    /// for `showmount` only; nothing else depends on it, and the UMNT goes out
    /// on a new connection to the MOUNT port, two round trips at the end.
    /// Default true; a one-shot tool may skip it, as libnfs-utils' `nfs-cp`
    /// does. NFSv4 has no unmount to send.
    public var unmountsOnClose: Bool = true
    /// Whether paths cross into exports nested below this one, as libnfs does by
    /// default (`auto-traverse-mounts`): an NFSv3 mount then asks for the server's
    /// export list (MOUNT's EXPORT, one round trip more before the mount
    /// completes) and mounts those below its own. With false, a path below a
    /// nested export names the directory underneath, as a Linux kernel's NFSv3
    /// mount shows it. nil: the URL's `auto-traverse-mounts`, else true.
    public var traversesNestedExports: Bool? = nil
    /// Whether an early mount (NFSv3 on libnfs 4.x-5.x, crossing no nested exports: see
    /// ``NFSContext/init(url:options:)``) returns as soon as the MNT reply has given the
    /// export's root handle, without waiting for the FSINFO that brings the transfer sizes.
    /// The first calls on handles then go out beside that FSINFO, a round trip sooner
    /// (10 ms on a 10 ms link). The NFS connection has not answered yet when the context is
    /// returned: a server that does not answer there fails the context's first calls, with
    /// the mount's error, instead of the mount; ``NFSContext/readMax``, ``NFSContext/writeMax``
    /// and what derives from them wait for the FSINFO reply when read before it. Ignored by
    /// every other mount. Default false.
    public var returnsAtRootHandle: Bool = false

    /// Creates options; every argument defaults to the values described on the properties.
    public init(timeout: Duration? = .seconds(30), uid: Int? = nil, gid: Int? = nil, version: Version? = nil,
                readahead: Int? = nil, autoreconnect: Int? = nil,
                readBufferSize: Int? = nil, writeBufferSize: Int? = nil,
                maxRequestsInFlight: Int = 64, noDelay: Bool = true, writeBehind: Int = 0,
                unmountsOnClose: Bool = true, readdirBufferSize: Int? = nil, traversesNestedExports: Bool? = nil,
                commitInterval: Int = 32 << 20, returnsAtRootHandle: Bool = false) {
        self.timeout = timeout; self.uid = uid; self.gid = gid; self.version = version
        self.readahead = readahead; self.autoreconnect = autoreconnect
        self.readBufferSize = readBufferSize; self.writeBufferSize = writeBufferSize
        self.maxRequestsInFlight = maxRequestsInFlight; self.noDelay = noDelay; self.writeBehind = writeBehind
        self.unmountsOnClose = unmountsOnClose; self.readdirBufferSize = readdirBufferSize
        self.traversesNestedExports = traversesNestedExports
        self.commitInterval = commitInterval
        self.returnsAtRootHandle = returnsAtRootHandle
    }

    /// The timeout libnfs applies for ``timeout``: whole seconds, a fraction
    /// rounded up, at most `Int32.max` milliseconds; nil when there is none.
    public var effectiveTimeout: Duration? {
        timeoutMilliseconds.map { .milliseconds(Int64($0)) }
    }

    /// The timeout as `nfs_set_timeout` takes it: whole seconds in milliseconds.
    ///
    /// libnfs (4.0.0 through 7.0.0) stores milliseconds but scans for expired
    /// RPCs at most once a second, and its header asks for whole seconds, so a
    /// fraction is rounded up (0.2 s becomes 1 s). Clamped, never trapping: a
    /// timeout beyond `Int32.max` milliseconds (about 24 days) is that limit.
    var timeoutMilliseconds: Int32? {
        guard let timeout else { return nil }
        let (seconds, attoseconds) = timeout.components
        guard seconds >= 0 else { return 1000 }
        let whole = attoseconds > 0 ? seconds.addingReportingOverflow(1) : (seconds, false)
        let (ms, overflow) = whole.0.multipliedReportingOverflow(by: 1000)
        if whole.1 || overflow { return Int32.max / 1000 * 1000 }
        return Int32(clamping: max(ms, 1000)) / 1000 * 1000
    }
}

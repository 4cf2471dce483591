internal import CLibNFS
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An `nfsfh*` that may sit in a `Sendable` value.
///
/// Invariant: libnfs only ever sees it on the thread holding its context (in a
/// request's `_async` call; see `ServiceLoop`), and the owning handle's gate guards its lifetime,
/// so it is never used by two threads at once or after close.
struct FilePointer: @unchecked Sendable {
    let raw: OpaquePointer
}

/// The one place that calls libnfs.
///
/// Every function maps one libnfs call and returns its raw result. After the
/// mount only the thread holding the engine's context calls them (`Engine/`); a request's
/// callback result becomes an ``NFSError`` in `ServiceLoop`.
internal enum Syscalls {
    typealias Context = OpaquePointer
    typealias FileHandle = OpaquePointer

    static func initContext() -> Context? { nfs_init_context() }
    static func destroyContext(_ nfs: Context) { nfs_destroy_context(nfs) }
    /// libnfs's last error text; it quotes paths byte for byte, so bytes that
    /// are not UTF-8 are escaped as in paths (`caf\xE9.txt`), never replaced.
    static func errorText(_ nfs: Context) -> String? {
        nfs_get_error(nfs).map { text(UnsafePointer($0)) }
    }
    /// A failed mount's text, from inside its callback: libnfs hands a failed call's own
    /// text ("Command timed out") to the callback, while the context's error may still
    /// hold an earlier one; the context's only when the callback got none.
    static func mountFailureText(_ nfs: Context?, _ data: UnsafeMutableRawPointer?) -> String? {
        let own = data.map { text($0.assumingMemoryBound(to: CChar.self)) } ?? ""
        return own.isEmpty ? nfs.flatMap(errorText) : own
    }

    /// A C string from libnfs, escaped as ``errorText(_:)`` is.
    static func text(_ text: UnsafePointer<CChar>) -> String {
        PathText.escaped(Array(UnsafeRawBufferPointer(start: text, count: strlen(text))))
    }

    static func setTimeout(_ nfs: Context, milliseconds: Int32) { nfs_set_timeout(nfs, milliseconds) }
    static func setUID(_ nfs: Context, _ uid: Int32) { nfs_set_uid(nfs, uid) }
    static func setGID(_ nfs: Context, _ gid: Int32) { nfs_set_gid(nfs, gid) }
    static func setVersion(_ nfs: Context, _ version: Int32) -> Int32 { nfs_set_version(nfs, version) }
    static func setAutoreconnect(_ nfs: Context, _ retries: Int32) { nfs_set_autoreconnect(nfs, retries) }
    static func setClientName(_ nfs: Context, _ name: String) { nfs4_set_client_name(nfs, name) }

    /// Applies a URL query's `arg=val` settings to `nfs` through libnfs's URL
    /// parser, under a placeholder host; false when libnfs refuses them.
    ///
    /// One parse at a time in the process: libnfs 6.0.2 built with TLS runs its
    /// `tls_global_init` on every parse (its default transport security is
    /// "undefined", not "none"), and that loads the system's CA certificates
    /// into GnuTLS behind an unlocked flag, so two mounts parsing at once
    /// crashed inside GnuTLS (CI, the async suite on 6.0.2).
    static func applyURLArguments(_ nfs: Context, query: String) -> Bool {
        urlParsing.withLock { parses in
            parses += 1
            guard let parsed = nfs_parse_url_incomplete(nfs, "nfs://127.0.0.1/?" + query) else { return false }
            nfs_destroy_url(parsed)
            return true
        }
    }
    /// The parses so far: the lock is what matters (a `Locked(())` trips the
    /// thread sanitizer, which sees its empty value's accesses as races).
    private static let urlParsing = Locked(0)

    static func mount(_ nfs: Context, server: String, export: FilePath) -> Int32 {
        export.withPlatformString { nfs_mount(nfs, server, $0) }
    }
    /// `nfs_mount_async` with `callback`; the mount's other calls are libnfs's own (see `RetransmittingMount`).
    static func mountAsync(_ nfs: Context, server: String, export: FilePath, callback: nfs_cb,
                           _ pd: UnsafeMutableRawPointer) -> Int32 {
        export.withPlatformString { nfs_mount_async(nfs, server, $0, callback, pd) }
    }
    /// The context's RPC timeout in milliseconds; 0 or less when it has none.
    static func timeout(_ nfs: Context) -> Int32 { nfs_get_timeout(nfs) }
    /// Lets each call of a mount in progress be sent again once, so that it
    /// times out at the context's timeout (libnfs 6.x; see `CLibNFS/shim.h`).
    static func setMountRetransmits(_ nfs: Context, timeoutMilliseconds: Int32) {
        _ = swiftnfs_mount_retransmits(nfs, timeoutMilliseconds)
    }
    static func readMax(_ nfs: Context) -> UInt64 { swiftnfs_get_readmax(nfs) }
    static func writeMax(_ nfs: Context) -> UInt64 { swiftnfs_get_writemax(nfs) }

    /// The inode of the socket of the context's current connection, which changes
    /// with every reconnect; nil when there is no connection.
    static func connectionIdentity(_ nfs: Context) -> UInt64? {
        let fd = nfs_get_fd(nfs)
        guard fd >= 0 else { return nil }
        return Platform.inode(ofDescriptor: fd)
    }

    static var apiVersion: Int { Int(swiftnfs_api_version()) }
    static var hasReadaheadSetter: Bool { swiftnfs_has_readahead() != 0 }
    static var hasReaddirBufferSetter: Bool { swiftnfs_has_readdir_buffer() != 0 }
    static func setReaddirBuffer(_ nfs: Context, dircount: UInt32, maxcount: UInt32) {
        _ = swiftnfs_set_readdir_buffer(nfs, dircount, maxcount)
    }
    static var resumesPartialSendsWrongly: Bool { swiftnfs_resumes_partial_sends_wrongly() != 0 }
    static var symbolAddress: UnsafeMutableRawPointer? { swiftnfs_symbol_address() }

    // The engine's loop (Engine/Engine.swift).
    static func descriptor(_ nfs: Context) -> Int32 { nfs_get_fd(nfs) }
    static func whichEvents(_ nfs: Context) -> Int32 { nfs_which_events(nfs) }
    static func service(_ nfs: Context, revents: Int32) -> Int32 { nfs_service(nfs, revents) }

    // The `_async` calls. Each passes the engine's one callback and the request
    // as private data; libnfs copies paths (and `utimes`'s times) at submit.
    typealias PrivateData = UnsafeMutableRawPointer
    private static var callback: nfs_cb { EngineCallback.function }

    static func umountAsync(_ nfs: Context, _ pd: PrivateData) -> Int32 { nfs_umount_async(nfs, callback, pd) }
    static func statAsync(_ nfs: Context, _ path: FilePath, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_stat64_async(nfs, $0, callback, pd) }
    }
    static func lstatAsync(_ nfs: Context, _ path: FilePath, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_lstat64_async(nfs, $0, callback, pd) }
    }
    static func fstatAsync(_ nfs: Context, _ fh: FileHandle, _ pd: PrivateData) -> Int32 { nfs_fstat64_async(nfs, fh, callback, pd) }
    static func statvfsAsync(_ nfs: Context, _ path: FilePath, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_statvfs64_async(nfs, $0, callback, pd) }
    }
    static func accessAsync(_ nfs: Context, _ path: FilePath, _ mode: Int32, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_access_async(nfs, $0, mode, callback, pd) }
    }
    static func openAsync(_ nfs: Context, _ path: FilePath, flags: Int32, mode: Int32, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_open2_async(nfs, $0, flags, mode, callback, pd) }
    }
    static func closeAsync(_ nfs: Context, _ fh: FileHandle, _ pd: PrivateData) -> Int32 { nfs_close_async(nfs, fh, callback, pd) }
    /// `buffer` receives the bytes on API v2 and must live until the callback; 4.x-5.x hand them to the callback instead.
    static func preadAsync(_ nfs: Context, _ fh: FileHandle, offset: UInt64, count: Int,
                           buffer: UnsafeMutableRawPointer?, _ pd: PrivateData) -> Int32 {
        swiftnfs_pread_async(nfs, fh, offset, UInt64(count), buffer, callback, pd)
    }
    /// `buffer` must live until the callback (API v2 sends from it without a copy).
    static func pwriteAsync(_ nfs: Context, _ fh: FileHandle, offset: UInt64, count: Int,
                            buffer: UnsafeRawPointer, _ pd: PrivateData) -> Int32 {
        swiftnfs_pwrite_async(nfs, fh, offset, UInt64(count), buffer, callback, pd)
    }
    /// True when reads land in the buffer given to ``preadAsync(_:_:offset:count:buffer:_:)`` (API v2).
    static var readsIntoBuffer: Bool { apiVersion >= 2 }
    static func fsyncAsync(_ nfs: Context, _ fh: FileHandle, _ pd: PrivateData) -> Int32 { nfs_fsync_async(nfs, fh, callback, pd) }
    static func ftruncateAsync(_ nfs: Context, _ fh: FileHandle, _ length: UInt64, _ pd: PrivateData) -> Int32 {
        nfs_ftruncate_async(nfs, fh, length, callback, pd)
    }
    static func truncateAsync(_ nfs: Context, _ path: FilePath, _ length: UInt64, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_truncate_async(nfs, $0, length, callback, pd) }
    }
    static func mkdirAsync(_ nfs: Context, _ path: FilePath, mode: Int32, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_mkdir2_async(nfs, $0, mode, callback, pd) }
    }
    static func rmdirAsync(_ nfs: Context, _ path: FilePath, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_rmdir_async(nfs, $0, callback, pd) }
    }
    static func unlinkAsync(_ nfs: Context, _ path: FilePath, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_unlink_async(nfs, $0, callback, pd) }
    }
    static func renameAsync(_ nfs: Context, _ from: FilePath, _ to: FilePath, _ pd: PrivateData) -> Int32 {
        from.withPlatformString { f in to.withPlatformString { nfs_rename_async(nfs, f, $0, callback, pd) } }
    }
    static func linkAsync(_ nfs: Context, _ from: FilePath, _ to: FilePath, _ pd: PrivateData) -> Int32 {
        from.withPlatformString { f in to.withPlatformString { nfs_link_async(nfs, f, $0, callback, pd) } }
    }
    static func symlinkAsync(_ nfs: Context, target: FilePath, at path: FilePath, _ pd: PrivateData) -> Int32 {
        target.withPlatformString { t in path.withPlatformString { nfs_symlink_async(nfs, t, $0, callback, pd) } }
    }
    static func readlinkAsync(_ nfs: Context, _ path: FilePath, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_readlink_async(nfs, $0, callback, pd) }
    }
    static func chmodAsync(_ nfs: Context, _ path: FilePath, _ mode: Int32, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_chmod_async(nfs, $0, mode, callback, pd) }
    }
    static func fchmodAsync(_ nfs: Context, _ fh: FileHandle, _ mode: Int32, _ pd: PrivateData) -> Int32 {
        nfs_fchmod_async(nfs, fh, mode, callback, pd)
    }
    static func fchownAsync(_ nfs: Context, _ fh: FileHandle, _ uid: Int32, _ gid: Int32, _ pd: PrivateData) -> Int32 {
        nfs_fchown_async(nfs, fh, uid, gid, callback, pd)
    }
    static func chownAsync(_ nfs: Context, _ path: FilePath, _ uid: Int32, _ gid: Int32, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_chown_async(nfs, $0, uid, gid, callback, pd) }
    }
    static func lchownAsync(_ nfs: Context, _ path: FilePath, _ uid: Int32, _ gid: Int32, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_lchown_async(nfs, $0, uid, gid, callback, pd) }
    }
    static func utimesAsync(_ nfs: Context, _ path: FilePath, atime: (Int64, Int64), mtime: (Int64, Int64),
                            _ pd: PrivateData) -> Int32 {
        path.withPlatformString { swiftnfs_utimes_async(nfs, $0, atime.0, atime.1, mtime.0, mtime.1, callback, pd) }
    }
    static func opendirAsync(_ nfs: Context, _ path: FilePath, _ pd: PrivateData) -> Int32 {
        path.withPlatformString { nfs_opendir_async(nfs, $0, callback, pd) }
    }

    /// The entries of a directory libnfs has read in full (`nfs_opendir_async`
    /// gives its `nfsdir`), closing it: the handle cannot outlive this call.
    static func readDirectory(_ nfs: Context, _ dir: OpaquePointer) -> [NFSDirectoryEntry] {
        defer { nfs_closedir(nfs, dir) }
        var entries: [NFSDirectoryEntry] = []
        while let entry = nfs_readdir(nfs, dir) {
            let e = entry.pointee
            // Names are bytes: a component keeps them exactly, whatever their encoding.
            guard let name = FilePath.Component(platformString: e.name), name.kind == .regular else { continue }
            entries.append(NFSDirectoryEntry(name: name, stat: NFSStat(
                device: e.dev, inode: e.inode, mode: e.mode | fileTypeBits(nfsType: e.type),
                nlink: UInt64(e.nlink), uid: e.uid, gid: e.gid, rdev: e.rdev, size: e.size,
                blockSize: e.blksize, blocks: e.blocks, used: e.used,
                accessTime: NFSTimestamp(seconds: Int64(e.atime.tv_sec), nanoseconds: e.atime_nsec),
                modificationTime: NFSTimestamp(seconds: Int64(e.mtime.tv_sec), nanoseconds: e.mtime_nsec),
                changeTime: NFSTimestamp(seconds: Int64(e.ctime.tv_sec), nanoseconds: e.ctime_nsec))))
        }
        return entries
    }

    /// READDIRPLUS gives the NFS3 type (NF3REG...) beside a mode that holds only permission bits.
    private static func fileTypeBits(nfsType: UInt32) -> UInt32 {
        switch nfsType {
        case 1: return 0o100000 // NF3REG
        case 2: return 0o040000 // NF3DIR
        case 3: return 0o060000 // NF3BLK
        case 4: return 0o020000 // NF3CHR
        case 5: return 0o120000 // NF3LNK
        case 6: return 0o140000 // NF3SOCK
        case 7: return 0o010000 // NF3FIFO
        default: return 0
        }
    }
}

extension NFSStat {
    init(_ st: nfs_stat_64) {
        self.init(
            device: st.nfs_dev, inode: st.nfs_ino, mode: UInt32(truncatingIfNeeded: st.nfs_mode),
            nlink: st.nfs_nlink, uid: UInt32(truncatingIfNeeded: st.nfs_uid), gid: UInt32(truncatingIfNeeded: st.nfs_gid),
            rdev: st.nfs_rdev, size: st.nfs_size, blockSize: st.nfs_blksize, blocks: st.nfs_blocks, used: st.nfs_used,
            accessTime: NFSTimestamp(seconds: Int64(bitPattern: st.nfs_atime), nanoseconds: UInt32(truncatingIfNeeded: st.nfs_atime_nsec)),
            modificationTime: NFSTimestamp(seconds: Int64(bitPattern: st.nfs_mtime), nanoseconds: UInt32(truncatingIfNeeded: st.nfs_mtime_nsec)),
            changeTime: NFSTimestamp(seconds: Int64(bitPattern: st.nfs_ctime), nanoseconds: UInt32(truncatingIfNeeded: st.nfs_ctime_nsec)))
    }
}

extension NFSFileSystemStats {
    init(_ st: nfs_statvfs_64) {
        self.init(blockSize: st.f_bsize, fragmentSize: st.f_frsize, blocks: st.f_blocks, freeBlocks: st.f_bfree,
                  availableBlocks: st.f_bavail, files: st.f_files, freeFiles: st.f_ffree,
                  availableFiles: st.f_favail, fileSystemID: st.f_fsid, flags: st.f_flag, maximumNameLength: st.f_namemax)
    }
}

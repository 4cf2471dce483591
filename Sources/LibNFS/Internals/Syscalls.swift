internal import CLibNFS
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A negative libnfs return value carried through `Result` until it becomes an ``NFSError``.
struct LibNFSStatus: Error {
    let rc: Int32
    init(_ rc: Int32) { self.rc = rc }
}

/// An `nfsfh*` that may sit in a `Sendable` value.
///
/// Invariant: libnfs only ever sees it inside a call made under its context's
/// lock (``NFSContext/call(_:path:_:)``), and the owning handle's own lock
/// guards its lifetime, so it is never used by two threads at once or after close.
struct FilePointer: @unchecked Sendable {
    let raw: OpaquePointer
}

/// The one place that calls libnfs.
///
/// Every function maps one libnfs call and returns its raw result; turning a
/// negative result into an ``NFSError`` happens in ``NFSContext/call(_:path:_:)``,
/// which also holds the context's lock. Keeping the C surface here lets a later
/// async layer (libnfs's `_async` calls) reuse the same shapes.
internal enum Syscalls {
    typealias Context = OpaquePointer
    typealias FileHandle = OpaquePointer

    static func initContext() -> Context? { nfs_init_context() }
    static func destroyContext(_ nfs: Context) { nfs_destroy_context(nfs) }
    /// libnfs's last error text; it quotes paths byte for byte, so bytes that
    /// are not UTF-8 are escaped as in paths (`caf\xE9.txt`), never replaced.
    static func errorText(_ nfs: Context) -> String? {
        guard let text = nfs_get_error(nfs) else { return nil }
        return PathText.escaped(Array(UnsafeRawBufferPointer(start: text, count: strlen(text))))
    }

    static func setTimeout(_ nfs: Context, milliseconds: Int32) { nfs_set_timeout(nfs, milliseconds) }
    static func setUID(_ nfs: Context, _ uid: Int32) { nfs_set_uid(nfs, uid) }
    static func setGID(_ nfs: Context, _ gid: Int32) { nfs_set_gid(nfs, gid) }
    static func setVersion(_ nfs: Context, _ version: Int32) -> Int32 { nfs_set_version(nfs, version) }
    /// Returns false when this libnfs has no read-ahead setter (6.0 and later).
    static func setReadahead(_ nfs: Context, _ bytes: UInt32) -> Bool { swiftnfs_set_readahead(nfs, bytes) != 0 }
    static func setAutoreconnect(_ nfs: Context, _ retries: Int32) { nfs_set_autoreconnect(nfs, retries) }
    static func setClientName(_ nfs: Context, _ name: String) { nfs4_set_client_name(nfs, name) }

    /// Applies a URL query's `arg=val` settings to `nfs` through libnfs's URL
    /// parser, under a placeholder host; false when libnfs refuses them.
    static func applyURLArguments(_ nfs: Context, query: String) -> Bool {
        guard let parsed = nfs_parse_url_incomplete(nfs, "nfs://127.0.0.1/?" + query) else { return false }
        nfs_destroy_url(parsed)
        return true
    }

    static func mount(_ nfs: Context, server: String, export: FilePath) -> Int32 {
        export.withPlatformString { nfs_mount(nfs, server, $0) }
    }
    static func umount(_ nfs: Context) -> Int32 { nfs_umount(nfs) }
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
    static var symbolAddress: UnsafeMutableRawPointer? { swiftnfs_symbol_address() }

    static func stat(_ nfs: Context, _ path: FilePath, _ st: inout nfs_stat_64) -> Int32 {
        path.withPlatformString { nfs_stat64(nfs, $0, &st) }
    }
    static func lstat(_ nfs: Context, _ path: FilePath, _ st: inout nfs_stat_64) -> Int32 {
        path.withPlatformString { nfs_lstat64(nfs, $0, &st) }
    }
    static func fstat(_ nfs: Context, _ fh: FileHandle, _ st: inout nfs_stat_64) -> Int32 { nfs_fstat64(nfs, fh, &st) }
    static func statvfs(_ nfs: Context, _ path: FilePath, _ st: inout nfs_statvfs_64) -> Int32 {
        path.withPlatformString { nfs_statvfs64(nfs, $0, &st) }
    }
    static func access(_ nfs: Context, _ path: FilePath, _ mode: Int32) -> Int32 {
        path.withPlatformString { nfs_access(nfs, $0, mode) }
    }

    static func open(_ nfs: Context, _ path: FilePath, flags: Int32, mode: Int32, _ fh: inout FileHandle?) -> Int32 {
        path.withPlatformString { swiftnfs_open(nfs, $0, flags, mode, &fh) }
    }
    static func close(_ nfs: Context, _ fh: FileHandle) -> Int32 { nfs_close(nfs, fh) }
    static func pread(_ nfs: Context, _ fh: FileHandle, offset: UInt64, count: Int, into buffer: UnsafeMutableRawPointer) -> Int32 {
        swiftnfs_pread(nfs, fh, offset, UInt64(count), buffer)
    }
    static func pwrite(_ nfs: Context, _ fh: FileHandle, offset: UInt64, count: Int, from buffer: UnsafeRawPointer) -> Int32 {
        swiftnfs_pwrite(nfs, fh, offset, UInt64(count), buffer)
    }
    static func fsync(_ nfs: Context, _ fh: FileHandle) -> Int32 { nfs_fsync(nfs, fh) }
    static func ftruncate(_ nfs: Context, _ fh: FileHandle, _ length: UInt64) -> Int32 { nfs_ftruncate(nfs, fh, length) }
    static func truncate(_ nfs: Context, _ path: FilePath, _ length: UInt64) -> Int32 {
        path.withPlatformString { nfs_truncate(nfs, $0, length) }
    }

    static func mkdir(_ nfs: Context, _ path: FilePath, mode: Int32) -> Int32 { path.withPlatformString { nfs_mkdir2(nfs, $0, mode) } }
    static func rmdir(_ nfs: Context, _ path: FilePath) -> Int32 { path.withPlatformString { nfs_rmdir(nfs, $0) } }
    static func unlink(_ nfs: Context, _ path: FilePath) -> Int32 { path.withPlatformString { nfs_unlink(nfs, $0) } }
    static func rename(_ nfs: Context, _ from: FilePath, _ to: FilePath) -> Int32 {
        from.withPlatformString { f in to.withPlatformString { nfs_rename(nfs, f, $0) } }
    }
    static func link(_ nfs: Context, _ from: FilePath, _ to: FilePath) -> Int32 {
        from.withPlatformString { f in to.withPlatformString { nfs_link(nfs, f, $0) } }
    }
    static func symlink(_ nfs: Context, target: FilePath, at path: FilePath) -> Int32 {
        target.withPlatformString { t in path.withPlatformString { nfs_symlink(nfs, t, $0) } }
    }
    static func readlink(_ nfs: Context, _ path: FilePath, _ buffer: UnsafeMutablePointer<CChar>, _ size: Int32) -> Int32 {
        path.withPlatformString { nfs_readlink(nfs, $0, buffer, size) }
    }
    static func chmod(_ nfs: Context, _ path: FilePath, _ mode: Int32) -> Int32 { path.withPlatformString { nfs_chmod(nfs, $0, mode) } }
    static func fchmod(_ nfs: Context, _ fh: FileHandle, _ mode: Int32) -> Int32 { nfs_fchmod(nfs, fh, mode) }
    static func fchown(_ nfs: Context, _ fh: FileHandle, _ uid: Int32, _ gid: Int32) -> Int32 { nfs_fchown(nfs, fh, uid, gid) }
    static func chown(_ nfs: Context, _ path: FilePath, _ uid: Int32, _ gid: Int32) -> Int32 {
        path.withPlatformString { nfs_chown(nfs, $0, uid, gid) }
    }
    static func lchown(_ nfs: Context, _ path: FilePath, _ uid: Int32, _ gid: Int32) -> Int32 {
        path.withPlatformString { nfs_lchown(nfs, $0, uid, gid) }
    }
    static func utimes(_ nfs: Context, _ path: FilePath, atime: (Int64, Int64), mtime: (Int64, Int64)) -> Int32 {
        path.withPlatformString { swiftnfs_utimes(nfs, $0, atime.0, atime.1, mtime.0, mtime.1) }
    }

    /// Opens, reads and closes a directory in one go, so that the directory
    /// handle cannot outlive this call on any path. Returns the negative errno
    /// of `nfs_opendir` on failure.
    static func readDirectory(_ nfs: Context, _ path: FilePath) -> Result<[NFSDirectoryEntry], LibNFSStatus> {
        var dir: OpaquePointer?
        let rc = path.withPlatformString { nfs_opendir(nfs, $0, &dir) }
        guard rc >= 0, let dir else { return .failure(LibNFSStatus(rc < 0 ? rc : -EIO)) }
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
        return .success(entries)
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

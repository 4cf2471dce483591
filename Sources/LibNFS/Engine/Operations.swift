internal import CLibNFS
import SystemPackage

/// Every libnfs call the package makes through the engine, as a ``Request``:
/// which `_async` function starts it and how its callback's data becomes a
/// Swift value. Sync and async methods build the same request and differ only
/// in how they wait for it.
enum Operations {
    static func status(_ operation: String, _ path: FilePath?,
                       _ issue: @escaping (OpaquePointer, UnsafeMutableRawPointer) -> Int32) -> Request<Void> {
        Request(operation, path: path, issue: issue, success: { _, _ in })
    }

    static func stat(_ path: FilePath, following: Bool) -> Request<NFSStat> {
        Request(following ? "stat" : "lstat", path: path, issue: { nfs, pd in
            following ? Syscalls.statAsync(nfs, path, pd) : Syscalls.lstatAsync(nfs, path, pd)
        }, success: { _, data in NFSStat(data!.load(as: nfs_stat_64.self)) })
    }

    static func fstat(_ fh: FilePointer, _ path: FilePath) -> Request<NFSStat> {
        Request("fstat", path: path, issue: { nfs, pd in Syscalls.fstatAsync(nfs, fh.raw, pd) },
                success: { _, data in NFSStat(data!.load(as: nfs_stat_64.self)) })
    }

    static func statvfs(_ path: FilePath) -> Request<NFSFileSystemStats> {
        Request("statvfs", path: path, issue: { nfs, pd in Syscalls.statvfsAsync(nfs, path, pd) },
                success: { _, data in NFSFileSystemStats(data!.load(as: nfs_statvfs_64.self)) })
    }

    static func open(_ path: FilePath, flags: Int32, mode: Int32) -> Request<FilePointer> {
        Request("open", path: path, issue: { nfs, pd in Syscalls.openAsync(nfs, path, flags: flags, mode: mode, pd) },
                success: { _, data in FilePointer(raw: OpaquePointer(data!)) })
    }

    static func close(_ fh: FilePointer, _ path: FilePath) -> Request<Void> {
        // Started only once no READ or WRITE on `fh` is in flight (see ``EngineRequest/closesFile``).
        status("close", path) { Syscalls.closeAsync($0, fh.raw, $1) }.closing(fh.raw)
    }

    static func readlink(_ path: FilePath) -> Request<FilePath> {
        Request("readlink", path: path, issue: { nfs, pd in Syscalls.readlinkAsync(nfs, path, pd) },
                success: { _, data in FilePath(platformString: data!.assumingMemoryBound(to: CChar.self)) })
    }

    static func scandir(_ path: FilePath) -> Request<[NFSDirectoryEntry]> {
        // The entries are read inside the callback, where libnfs hands over the
        // directory; both closures run on the thread holding the context, so `context` needs no lock.
        let context = ServiceThreadBox()
        return Request("opendir", path: path, issue: { nfs, pd in
            context.nfs = nfs
            return Syscalls.opendirAsync(nfs, path, pd)
        }, success: { _, data in
            guard let data, let nfs = context.nfs else { return [] }
            return Syscalls.readDirectory(nfs, OpaquePointer(data))
        })
    }

    /// One READ of at most the server's readMax into `destination`.
    ///
    /// 4.x-5.x hand the bytes to the callback, which copies them into
    /// `destination`; API v2 reads into a buffer the request owns (it must
    /// live until the reply, which may outlast an abandoned caller) and the
    /// callback copies from there. Either way the copy happens under the
    /// request's lock and only while the caller still waits.
    static func pread(_ fh: FilePointer, _ path: FilePath, offset: UInt64,
                      into destination: UnsafeMutableRawBufferPointer) -> Request<Int> {
        let owned = Syscalls.readsIntoBuffer ? OwnedBytes(count: destination.count) : nil
        return Request("read", path: path, issue: { nfs, pd in
            Syscalls.preadAsync(nfs, fh.raw, offset: offset, count: destination.count,
                                buffer: owned?.buffer.baseAddress, pd)
        }, success: { status, data in
            let count = min(Int(status), destination.count)
            if count > 0, let source = owned?.buffer.baseAddress ?? data {
                destination.baseAddress!.copyMemory(from: source, byteCount: count)
            }
            return count
        }).using(fh.raw)
    }

    /// One WRITE of `bytes`, which the request owns until the reply (API v2 sends from them without a copy).
    static func pwrite(_ fh: FilePointer, _ path: FilePath, offset: UInt64, bytes: OwnedBytes) -> Request<Int> {
        Request("write", path: path, issue: { nfs, pd in
            Syscalls.pwriteAsync(nfs, fh.raw, offset: offset, count: bytes.buffer.count,
                                 buffer: UnsafeRawPointer(bytes.buffer.baseAddress!), pd)
        }, success: { status, _ in Int(status) }).using(fh.raw)
    }
}

/// Bytes on the heap whose lifetime a request controls.
final class OwnedBytes: @unchecked Sendable {
    let buffer: UnsafeMutableRawBufferPointer

    init(count: Int) {
        buffer = .allocate(byteCount: max(count, 1), alignment: 16)
    }

    convenience init(copying source: UnsafeRawBufferPointer) {
        self.init(count: source.count)
        if !source.isEmpty { buffer.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: source.count) }
    }

    deinit { buffer.deallocate() }
}

/// A context pointer carried from a request's issue closure to its success closure (both on the thread holding the context).
final class ServiceThreadBox: @unchecked Sendable {
    var nfs: OpaquePointer?
}

internal import CLibNFS
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The NFSv3 calls on file handles (libnfs's raw RPC layer, through the shim),
/// each mapping one call and returning its raw result like the rest of ``Syscalls``.
/// Their callback is ``HandleCallback/function``, which reports to the engine as
/// the path calls' callback does.
extension Syscalls {
    /// The handle behind an open file, copied (libnfs frees its own with the file).
    static func handleBytes(_ fh: FileHandle) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: swiftnfs_fh_bytes(fh), count: swiftnfs_fh_length(fh)))
    }

    /// The export's root handle, copied (empty before a mount).
    static func rootHandleBytes(_ nfs: Context) -> [UInt8] {
        let count = swiftnfs_root_fh_length(nfs)
        guard count > 0, let bytes = swiftnfs_root_fh_bytes(nfs) else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }

    static func lookup3Async(_ nfs: Context, _ directory: [UInt8], _ name: FilePath.Component, _ pd: PrivateData) -> Int32 {
        directory.withUnsafeBytes { dir in
            name.withPlatformString { swiftnfs3_lookup_async(nfs, dir.baseAddress, dir.count, $0, HandleCallback.function, pd) }
        }
    }

    /// The handle and attributes a LOOKUP reply names.
    static func lookup3Result(_ reply: UnsafeMutableRawPointer) -> (handle: [UInt8], attributes: NFSStat?) {
        var length = 0
        var attributes: UnsafePointer<fattr3>?
        let bytes = swiftnfs3_lookup_result(reply, &length, &attributes)
        return (Array(UnsafeRawBufferPointer(start: bytes, count: length)), attributes.map { NFSStat($0.pointee) })
    }

    /// `buffer` receives the bytes on API v2 and must live until the callback; 4.x-5.x hand them over in the reply.
    static func read3Async(_ nfs: Context, _ file: [UInt8], offset: UInt64, count: Int,
                           buffer: UnsafeMutableRawPointer?, _ pd: PrivateData) -> Int32 {
        file.withUnsafeBytes { fh in
            swiftnfs3_read_async(nfs, fh.baseAddress, fh.count, offset, UInt32(count), buffer, HandleCallback.function, pd)
        }
    }

    /// How many bytes a READ reply holds, where they are (nil: in the caller's buffer already) and whether the file ends there.
    static func read3Result(_ reply: UnsafeMutableRawPointer) -> (count: Int, bytes: UnsafeRawPointer?, end: Bool) {
        var bytes: UnsafeRawPointer?
        var eof: Int32 = 0
        let count = swiftnfs3_read_result(reply, &bytes, &eof)
        return (Int(count), bytes, eof != 0)
    }

    /// `bytes` must live until the callback (5.x and API v2 send from them without a copy).
    static func write3Async(_ nfs: Context, _ file: [UInt8], offset: UInt64, bytes: UnsafeRawBufferPointer,
                            stable: Bool, _ pd: PrivateData) -> Int32 {
        file.withUnsafeBytes { fh in
            swiftnfs3_write_async(nfs, fh.baseAddress, fh.count, offset, bytes.baseAddress, UInt32(bytes.count),
                                  stable ? 2 : 0, HandleCallback.function, pd)
        }
    }

    /// The bytes a WRITE wrote, and whether they are on stable storage (FILE_SYNC).
    static func write3Result(_ reply: UnsafeMutableRawPointer) -> (count: Int, stable: Bool) {
        var committed: Int32 = 0
        let count = swiftnfs3_write_result(reply, &committed)
        return (Int(count), committed == 2)
    }

    static func commit3Async(_ nfs: Context, _ file: [UInt8], _ pd: PrivateData) -> Int32 {
        file.withUnsafeBytes { swiftnfs3_commit_async(nfs, $0.baseAddress, $0.count, HandleCallback.function, pd) }
    }

    static func create3Async(_ nfs: Context, _ directory: [UInt8], _ name: FilePath.Component, exclusive: Bool,
                             mode: Int, _ pd: PrivateData) -> Int32 {
        directory.withUnsafeBytes { dir in
            name.withPlatformString {
                swiftnfs3_create_async(nfs, dir.baseAddress, dir.count, $0, exclusive ? 1 : 0, UInt32(mode),
                                       HandleCallback.function, pd)
            }
        }
    }

    /// The new file's handle, nil when the server sent none.
    static func create3Result(_ reply: UnsafeMutableRawPointer) -> [UInt8]? {
        optionalHandle { swiftnfs3_create_result(reply, $0) }
    }

    /// The handle `body` finds in a reply (its bytes and their count), copied; nil for none.
    private static func optionalHandle(_ body: (UnsafeMutablePointer<Int>) -> UnsafeRawPointer?) -> [UInt8]? {
        var length = 0
        guard let bytes = body(&length) else { return nil }
        return Array(UnsafeRawBufferPointer(start: bytes, count: length))
    }

    static func mkdir3Async(_ nfs: Context, _ directory: [UInt8], _ name: FilePath.Component, mode: Int,
                            _ pd: PrivateData) -> Int32 {
        directory.withUnsafeBytes { dir in
            name.withPlatformString {
                swiftnfs3_mkdir_async(nfs, dir.baseAddress, dir.count, $0, UInt32(mode), HandleCallback.function, pd)
            }
        }
    }

    /// The new directory's handle, nil when the server sent none.
    static func mkdir3Result(_ reply: UnsafeMutableRawPointer) -> [UInt8]? {
        optionalHandle { swiftnfs3_mkdir_result(reply, $0) }
    }

    /// Times go out as NFSv3's 32-bit seconds, cut as libnfs's `nfs_utimes` cuts them.
    static func setattr3Async(_ nfs: Context, _ file: [UInt8], _ attributes: NFSNewAttributes, _ pd: PrivateData) -> Int32 {
        let times = attributes.times
        return file.withUnsafeBytes {
            swiftnfs3_setattr_async(nfs, $0.baseAddress, $0.count, Int64(attributes.permissions ?? -1),
                                    attributes.size.map { Int64($0) } ?? -1,
                                    attributes.owner.map { Int64($0.uid) } ?? -1, attributes.owner.map { Int64($0.gid) } ?? -1,
                                    times == nil ? 0 : 1,
                                    UInt32(truncatingIfNeeded: times?.access.seconds ?? 0), times?.access.nanoseconds ?? 0,
                                    UInt32(truncatingIfNeeded: times?.modification.seconds ?? 0), times?.modification.nanoseconds ?? 0,
                                    HandleCallback.function, pd)
        }
    }

    static func getattr3Async(_ nfs: Context, _ file: [UInt8], _ pd: PrivateData) -> Int32 {
        file.withUnsafeBytes { swiftnfs3_getattr_async(nfs, $0.baseAddress, $0.count, HandleCallback.function, pd) }
    }

    static func getattr3Result(_ reply: UnsafeMutableRawPointer) -> NFSStat {
        NFSStat(swiftnfs3_getattr_result(reply)!.pointee)
    }

    static func fsinfo3Async(_ nfs: Context, _ root: [UInt8], _ pd: PrivateData) -> Int32 {
        root.withUnsafeBytes { swiftnfs3_fsinfo_async(nfs, $0.baseAddress, $0.count, HandleCallback.function, pd) }
    }

    /// The largest READ and WRITE an FSINFO reply allows.
    static func fsinfo3Result(_ reply: UnsafeMutableRawPointer) -> (readMax: UInt32, writeMax: UInt32) {
        var readMax: UInt32 = 0
        var writeMax: UInt32 = 0
        swiftnfs3_fsinfo_result(reply, &readMax, &writeMax)
        return (readMax, writeMax)
    }

    static func rename3Async(_ nfs: Context, from: ([UInt8], FilePath.Component), to: ([UInt8], FilePath.Component),
                             _ pd: PrivateData) -> Int32 {
        from.0.withUnsafeBytes { fromDir in
            to.0.withUnsafeBytes { toDir in
                from.1.withPlatformString { fromName in
                    to.1.withPlatformString { toName in
                        swiftnfs3_rename_async(nfs, fromDir.baseAddress, fromDir.count, fromName,
                                               toDir.baseAddress, toDir.count, toName, HandleCallback.function, pd)
                    }
                }
            }
        }
    }

    static func readdirplus3Async(_ nfs: Context, _ directory: [UInt8], cookie: UInt64, verifier: [UInt8],
                                  count: Int, _ pd: PrivateData) -> Int32 {
        directory.withUnsafeBytes { dir in
            verifier.withUnsafeBytes {
                swiftnfs3_readdirplus_async(nfs, dir.baseAddress, dir.count, cookie, $0.baseAddress,
                                            UInt32(clamping: count), HandleCallback.function, pd)
            }
        }
    }

    /// The entries of one READDIRPLUS reply, copied out, with the cookie and verifier to go on from and whether it ends the listing.
    static func readdirplus3Result(_ reply: UnsafeMutableRawPointer) -> ListingPart {
        var eof: Int32 = 0
        var verifier = [UInt8](repeating: 0, count: 8)
        var entry = verifier.withUnsafeMutableBytes { swiftnfs3_readdirplus_result(reply, &eof, $0.baseAddress) }
        var part = ListingPart(entries: [], cookie: nil, verifier: verifier, end: eof != 0)
        while let current = entry {
            part.cookie = swiftnfs3_entry_cookie(current)
            if let name = FilePath.Component(platformString: swiftnfs3_entry_name(current)), name.kind == .regular {
                part.entries.append(NFSHandleEntry(
                    name: name, stat: swiftnfs3_entry_attributes(current).map { NFSStat($0.pointee) },
                    handle: optionalHandle { swiftnfs3_entry_handle(current, $0) }.map(NFSObjectHandle.init(bytes:))))
            }
            entry = swiftnfs3_entry_next(current)
        }
        return part
    }

    struct ListingPart: Sendable {
        var entries: [NFSHandleEntry]
        /// The last entry's cookie, nil when the reply held none.
        var cookie: UInt64?
        var verifier: [UInt8]
        var end: Bool
    }

    static func status3(_ reply: UnsafeRawPointer) -> Int32 { swiftnfs3_status(reply) }
}

/// The C callback of every call on file handles: libnfs's RPC layer calls it
/// inside `nfs_service` with the request as private data. It turns the RPC
/// status and the reply's nfsstat3 into the status convention of the path
/// calls (a count or 0, else a negative errno) and hands over to the engine.
enum HandleCallback {
    static let function: rpc_cb = { _, status, data, privateData in
        guard let privateData else { return }
        let request = Unmanaged<EngineRequest>.fromOpaque(privateData).takeRetainedValue()
        guard let loop = request.loop else { return }
        switch Int32(status) {
        case RPC_STATUS_SUCCESS:
            guard let data else { return loop.callback(request, status: -EIO, data: nil, message: "empty reply") }
            let nfsStatus = Syscalls.status3(data)
            if nfsStatus == 0 {
                loop.callback(request, status: 0, data: data)
            } else {
                loop.callback(request, status: -NFS3Status.errno(nfsStatus), data: nil,
                              message: "\(request.operation.uppercased()) failed with \(NFS3Status.name(nfsStatus))")
            }
        case RPC_STATUS_ERROR:
            // As libnfs's own calls report an RPC-layer failure: EFAULT with the text in `data`.
            loop.callback(request, status: -EFAULT, data: data)
        case RPC_STATUS_CANCEL:
            loop.callback(request, status: -EINTR, data: nil, message: "Command was cancelled")
        default:
            loop.callback(request, status: -EINTR, data: nil, message: "Command timed out")
        }
    }
}

/// NFSv3's status codes, as libnfs's `nfsstat3_to_errno` and `nfsstat3_to_str` map them.
enum NFS3Status {
    static func errno(_ status: Int32) -> Int32 {
        switch status {
        case 1: EPERM
        case 2: ENOENT
        case 5: EIO
        case 6: ENXIO
        case 13: EACCES
        case 17: EEXIST
        case 18: EXDEV
        case 19: ENODEV
        case 20: ENOTDIR
        case 21: EISDIR
        case 22: EINVAL
        case 27: EFBIG
        case 28: ENOSPC
        case 30: EROFS
        case 31: EMLINK
        case 63: ENAMETOOLONG
        case 66: ENOTEMPTY
        case 69: EDQUOT
        case 70: ESTALE
        case 10008: EAGAIN
        case 10004, 10007: EINVAL
        default: EIO
        }
    }

    static func name(_ status: Int32) -> String {
        let names: [Int32: String] = [
            1: "PERM", 2: "NOENT", 5: "IO", 6: "NXIO", 13: "ACCES", 17: "EXIST", 18: "XDEV", 19: "NODEV",
            20: "NOTDIR", 21: "ISDIR", 22: "INVAL", 27: "FBIG", 28: "NOSPC", 30: "ROFS", 31: "MLINK",
            63: "NAMETOOLONG", 66: "NOTEMPTY", 69: "DQUOT", 70: "STALE", 71: "REMOTE", 10001: "BADHANDLE",
            10002: "NOT_SYNC", 10003: "BAD_COOKIE", 10004: "NOTSUPP", 10005: "TOOSMALL", 10006: "SERVERFAULT",
            10007: "BADTYPE", 10008: "JUKEBOX",
        ]
        return "NFS3ERR_\(names[status] ?? String(status))"
    }
}

extension NFSStat {
    /// What an NFSv3 reply's attributes say, in the shape libnfs's stat gives.
    init(_ a: fattr3) {
        let typeBits: UInt32 = switch a.type.rawValue {
        case 1: 0o100000
        case 2: 0o040000
        case 3: 0o060000
        case 4: 0o020000
        case 5: 0o120000
        case 6: 0o140000
        case 7: 0o010000
        default: 0
        }
        self.init(device: a.fsid, inode: a.fileid, mode: a.mode & 0o7777 | typeBits, nlink: UInt64(a.nlink),
                  uid: a.uid, gid: a.gid,
                  rdev: UInt64(a.rdev.specdata1) << 32 | UInt64(a.rdev.specdata2), size: a.size,
                  blockSize: 4096, blocks: (a.used + 511) / 512, used: a.used,
                  accessTime: NFSTimestamp(seconds: Int64(a.atime.seconds), nanoseconds: a.atime.nseconds),
                  modificationTime: NFSTimestamp(seconds: Int64(a.mtime.seconds), nanoseconds: a.mtime.nseconds),
                  changeTime: NFSTimestamp(seconds: Int64(a.ctime.seconds), nanoseconds: a.ctime.nseconds))
    }
}

internal import CLibNFS
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The NFSv3 calls on file handles as ``Request``s (see ``NFSObjectHandle``):
/// one RPC each, named by handle, so none resolves a path from the root first.
extension Operations {
    /// Opens `path` (libnfs's lookups, then an ACCESS) for the handle behind it;
    /// the caller closes the returned file, which no READ or WRITE ever uses.
    static func handle(of path: FilePath) -> Request<(handle: [UInt8], file: FilePointer)> {
        Request("open", path: path, issue: { nfs, pd in Syscalls.openAsync(nfs, path, flags: O_RDONLY, mode: 0, pd) },
                success: { _, data in
                    let fh = OpaquePointer(data!)
                    return (Syscalls.handleBytes(fh), FilePointer(raw: fh))
                })
    }

    static func lookup(_ name: FilePath.Component, in directory: NFSObjectHandle,
                       path: FilePath) -> Request<(handle: [UInt8], attributes: NFSStat?)> {
        Request(onHandle: "lookup", path: path, issue: { nfs, pd in Syscalls.lookup3Async(nfs, directory.bytes, name, pd) },
                success: { _, data in Syscalls.lookup3Result(data!) })
    }

    /// One READ of at most `destination.count` bytes, copied into `destination`
    /// under the request's lock while the caller still waits (as ``pread(_:_:offset:into:)``).
    static func read(_ file: NFSObjectHandle, path: FilePath, offset: UInt64,
                     into destination: UnsafeMutableRawBufferPointer) -> Request<(count: Int, end: Bool)> {
        read(file, path: path, offset: offset, into: destination) { $0 }
    }

    /// ``read(_:path:offset:into:)`` answering with the count alone, as ``pread(_:_:offset:into:)`` does for a libnfs file.
    static func pread(_ file: NFSObjectHandle, path: FilePath, offset: UInt64,
                      into destination: UnsafeMutableRawBufferPointer) -> Request<Int> {
        read(file, path: path, offset: offset, into: destination) { $0.count }
    }

    private static func read<T>(_ file: NFSObjectHandle, path: FilePath, offset: UInt64,
                                into destination: UnsafeMutableRawBufferPointer,
                                _ value: @escaping @Sendable ((count: Int, end: Bool)) -> T) -> Request<T> {
        read(file, path: path, offset: offset, count: destination.count) { bytes, end in
            if !bytes.isEmpty { destination.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
            return value((bytes.count, end))
        }
    }

    /// One READ of at most `count` bytes at `offset`, which the thread holding the context writes
    /// at the same offset of the local file `descriptor`, straight from the reply (API v2: from
    /// a buffer the request owns): under the request's lock and only while the caller still
    /// waits, so a caller that gave up may close the descriptor once ``Request/finish(_:)`` returned.
    /// A failed local write is the value's `failure`, not the request's error (it is not the server's).
    static func read(_ file: NFSObjectHandle, path: FilePath, offset: UInt64, count: Int,
                     writingTo descriptor: FileDescriptor) -> Request<DescriptorRead> {
        read(file, path: path, offset: offset, count: count) { bytes, end in
            do {
                if !bytes.isEmpty { _ = try descriptor.writeAll(toAbsoluteOffset: Int64(offset), bytes) }
                return DescriptorRead(count: bytes.count, end: end, failure: nil)
            } catch {
                return DescriptorRead(count: bytes.count, end: end, failure: error as? Errno ?? .ioError)
            }
        }
    }

    /// One READ of at most `count` bytes at `offset` whose reply's bytes (at most `count`;
    /// API v1 hands over its own, API v2 reads into a buffer the request owns, which must
    /// live until the reply) and end-of-file flag `body` turns into the value, on the thread
    /// holding the context, under the request's lock and only while the caller still waits.
    private static func read<T>(_ file: NFSObjectHandle, path: FilePath, offset: UInt64, count: Int,
                                _ body: @escaping (UnsafeRawBufferPointer, Bool) -> T) -> Request<T> {
        let owned = Syscalls.readsIntoBuffer ? OwnedBytes(count: count) : nil
        return Request(onHandle: "read", path: path, issue: { nfs, pd in
            Syscalls.read3Async(nfs, file.bytes, offset: offset, count: count, buffer: owned?.buffer.baseAddress, pd)
        }, success: { _, data in
            let reply = Syscalls.read3Result(data!)
            let got = min(reply.count, count)
            let source = got > 0 ? reply.bytes ?? owned.map({ UnsafeRawPointer($0.buffer.baseAddress!) }) : nil
            return body(UnsafeRawBufferPointer(start: source, count: source == nil ? 0 : got), reply.end)
        })
    }

    /// What a READ written into a local file (``read(_:path:offset:count:writingTo:)``) did.
    struct DescriptorRead: Sendable {
        var count: Int
        var end: Bool
        var failure: Errno?
    }

    /// One WRITE of `bytes`, which the request owns until the reply.
    static func write(_ file: NFSObjectHandle, path: FilePath, offset: UInt64, bytes: OwnedBytes,
                      stable: Bool) -> Request<(count: Int, stable: Bool)> {
        write(file, path: path, offset: offset, bytes: bytes, stable: stable) { $0 }
    }

    /// An unstable WRITE answering with the count alone, as ``pwrite(_:_:offset:bytes:)`` does for a libnfs file.
    static func pwrite(_ file: NFSObjectHandle, path: FilePath, offset: UInt64, bytes: OwnedBytes) -> Request<Int> {
        write(file, path: path, offset: offset, bytes: bytes, stable: false) { $0.count }
    }

    private static func write<T>(_ file: NFSObjectHandle, path: FilePath, offset: UInt64, bytes: OwnedBytes, stable: Bool,
                                 _ value: @escaping @Sendable ((count: Int, stable: Bool)) -> T) -> Request<T> {
        Request(onHandle: "write", path: path, issue: { nfs, pd in
            Syscalls.write3Async(nfs, file.bytes, offset: offset, bytes: UnsafeRawBufferPointer(bytes.buffer),
                                 stable: stable, pd)
        }, success: { _, data in value(Syscalls.write3Result(data!)) })
    }

    static func getattr(_ file: NFSObjectHandle, path: FilePath) -> Request<NFSStat> {
        Request(onHandle: "fstat", path: path, issue: { nfs, pd in Syscalls.getattr3Async(nfs, file.bytes, pd) },
                success: { _, data in Syscalls.getattr3Result(data!) })
    }

    static func commit(_ file: NFSObjectHandle, path: FilePath) -> Request<Void> {
        Request(onHandle: "commit", path: path, issue: { nfs, pd in Syscalls.commit3Async(nfs, file.bytes, pd) },
                success: { _, _ in })
    }

    static func create(_ name: FilePath.Component, in directory: NFSObjectHandle, path: FilePath,
                       exclusive: Bool, permissions: Int) -> Request<[UInt8]?> {
        Request(onHandle: "create", path: path, issue: { nfs, pd in
            Syscalls.create3Async(nfs, directory.bytes, name, exclusive: exclusive, mode: permissions, pd)
        }, success: { _, data in Syscalls.create3Result(data!) })
    }

    static func makeDirectory(_ name: FilePath.Component, in directory: NFSObjectHandle, path: FilePath,
                              permissions: Int) -> Request<[UInt8]?> {
        Request(onHandle: "mkdir", path: path, issue: { nfs, pd in
            Syscalls.mkdir3Async(nfs, directory.bytes, name, mode: permissions, pd)
        }, success: { _, data in Syscalls.mkdir3Result(data!) })
    }

    /// One SETATTR of what is given; `operation` names it in errors (by default the call
    /// that sets the attribute given, as `truncate`, or `setattr` for several).
    static func setAttributes(_ file: NFSObjectHandle, path: FilePath, _ attributes: NFSNewAttributes,
                              operation: String? = nil) -> Request<Void> {
        Request(onHandle: operation ?? attributes.operation, path: path, issue: { nfs, pd in
            Syscalls.setattr3Async(nfs, file.bytes, attributes, pd)
        }, success: { _, _ in })
    }

    static func rename(_ name: FilePath.Component, in directory: NFSObjectHandle,
                       to newName: FilePath.Component, in newDirectory: NFSObjectHandle, path: FilePath) -> Request<Void> {
        Request(onHandle: "rename", path: path, issue: { nfs, pd in
            Syscalls.rename3Async(nfs, from: (directory.bytes, name), to: (newDirectory.bytes, newName), pd)
        }, success: { _, _ in })
    }

    /// FSINFO of the export's root: the transfer sizes, for an early mount (see ``PendingMount``).
    static func fsinfo(root: [UInt8]) -> Request<(readMax: UInt32, writeMax: UInt32)> {
        Request(onHandle: "mount", path: nil, issue: { nfs, pd in Syscalls.fsinfo3Async(nfs, root, pd) },
                success: { _, data in Syscalls.fsinfo3Result(data!) })
    }

    static func listPart(_ directory: NFSObjectHandle, path: FilePath, cookie: UInt64, verifier: [UInt8],
                         count: Int) -> Request<Syscalls.ListingPart> {
        Request(onHandle: "opendir", path: path, issue: { nfs, pd in
            Syscalls.readdirplus3Async(nfs, directory.bytes, cookie: cookie, verifier: verifier, count: count, pd)
        }, success: { _, data in Syscalls.readdirplus3Result(data!) })
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The socket calls and constants whose names or types differ between Linux
/// (Glibc) and macOS (Darwin), for the test helpers. Linux is tested; the
/// Darwin branches are written for macOS but not run here.
enum Platform {
    #if canImport(Glibc)
    static let streamSocket = Int32(SOCK_STREAM.rawValue)
    static func shutdown(_ fd: Int32, _ how: Int32) { _ = Glibc.shutdown(fd, how) }
    #else
    static let streamSocket = SOCK_STREAM
    static func shutdown(_ fd: Int32, _ how: Int32) { _ = Darwin.shutdown(fd, how) }
    #endif
    static let shutdownWrite = Int32(SHUT_WR)
    static func close(_ fd: Int32) -> Int32 {
        #if canImport(Glibc)
        Glibc.close(fd)
        #else
        Darwin.close(fd)
        #endif
    }
    static let shutdownBoth = Int32(SHUT_RDWR)

    /// `send` that returns EPIPE for a closed peer instead of raising SIGPIPE,
    /// which would end the whole test process.
    static func sendWithoutSignal(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        send(fd, bytes, count, Int32(MSG_NOSIGNAL))
        #else
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, socklen_t(MemoryLayout<Int32>.size))
        return send(fd, bytes, count, 0)
        #endif
    }
}

/// What the local file system says about a path (`lstat`), as the tests' oracle.
public struct LocalStat: Sendable {
    public var nlink: UInt64
    public var mode: UInt32
    public var size: UInt64
    public var accessTime: (seconds: Int64, nanoseconds: Int64)
    public var modificationTime: (seconds: Int64, nanoseconds: Int64)
    public var uid: UInt32
    public var gid: UInt32

    public init(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { throw SocketError(what: "lstat \(path)", code: errno) }
        uid = UInt32(st.st_uid)
        gid = UInt32(st.st_gid)
        nlink = UInt64(st.st_nlink)
        mode = UInt32(st.st_mode)
        size = UInt64(st.st_size)
        #if canImport(Glibc)
        accessTime = (Int64(st.st_atim.tv_sec), Int64(st.st_atim.tv_nsec))
        modificationTime = (Int64(st.st_mtim.tv_sec), Int64(st.st_mtim.tv_nsec))
        #else
        accessTime = (Int64(st.st_atimespec.tv_sec), Int64(st.st_atimespec.tv_nsec))
        modificationTime = (Int64(st.st_mtimespec.tv_sec), Int64(st.st_mtimespec.tv_nsec))
        #endif
    }
}

/// Sets `path`'s access and modification times to the nanosecond (`utimensat`), for tests that check they are kept.
public func setLocalTimes(_ path: String, access: (seconds: Int64, nanoseconds: Int64),
                          modification: (seconds: Int64, nanoseconds: Int64)) throws {
    let times = [timespec(tv_sec: Int(access.seconds), tv_nsec: Int(access.nanoseconds)),
                 timespec(tv_sec: Int(modification.seconds), tv_nsec: Int(modification.nanoseconds))]
    guard utimensat(AT_FDCWD, path, times, 0) == 0 else { throw SocketError(what: "utimensat \(path)", code: errno) }
}

/// The local `statvfs` of a path, as the tests' oracle for the server's figures.
public struct LocalFileSystemStats: Sendable {
    public var totalBytes: UInt64
    public var freeBytes: UInt64
    public var availableBytes: UInt64
    public var files: UInt64
    public var maximumNameLength: UInt64

    public init(_ path: String) throws {
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { throw SocketError(what: "statvfs \(path)", code: errno) }
        let unit = UInt64(st.f_frsize != 0 ? st.f_frsize : st.f_bsize)
        totalBytes = UInt64(st.f_blocks) * unit
        freeBytes = UInt64(st.f_bfree) * unit
        availableBytes = UInt64(st.f_bavail) * unit
        files = UInt64(st.f_files)
        maximumNameLength = UInt64(st.f_namemax)
    }
}

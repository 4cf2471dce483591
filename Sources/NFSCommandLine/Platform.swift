import LibNFS
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// `stat` is also the struct's name: the function needs a name of its own.
private func statFollowing(_ path: UnsafePointer<CChar>, _ st: inout stat) -> Int32 { stat(path, &st) }

/// The C library calls and fields whose names differ between Linux (Glibc)
/// and macOS (Darwin), in one place, as swift-system keeps its own, and the
/// path calls on `FilePath`s (their bytes, whatever the encoding). Linux is
/// tested; the Darwin branches are written for macOS but not run here.
public enum Platform {
    #if canImport(Glibc)
    typealias DirectoryStream = OpaquePointer
    static func accessTime(_ st: stat) -> NFSTimestamp { timestamp(st.st_atim) }
    static func modificationTime(_ st: stat) -> NFSTimestamp { timestamp(st.st_mtim) }
    #else
    typealias DirectoryStream = UnsafeMutablePointer<DIR>
    static func accessTime(_ st: stat) -> NFSTimestamp { timestamp(st.st_atimespec) }
    static func modificationTime(_ st: stat) -> NFSTimestamp { timestamp(st.st_mtimespec) }
    #endif

    /// Keeps freed chunk-sized memory in the process for the next chunk.
    ///
    /// A copy's buffers (chunks, READ replies) are allocated on one thread and freed on
    /// another of the task pool. glibc's dynamic thresholds then kept handing megabytes
    /// back to the kernel and faulting them in again: a 256 MiB download took 35 000
    /// page faults instead of 8 000 and ran 20% slower. Fixed thresholds (16 MiB before
    /// a block gets its own mapping, 64 MiB free at a heap's top before it is trimmed)
    /// brought it to 9 400. Public for the executables' `main`; a no-op off glibc.
    public static func keepFreedMemory() {
        #if canImport(Glibc)
        // <malloc.h> is not in Swift's Glibc module: mallopt and its option numbers
        // (M_TRIM_THRESHOLD -1, M_MMAP_THRESHOLD -3, fixed in glibc's ABI) by hand.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(-3, 16 << 20)
        _ = mallopt(-1, 64 << 20)
        #endif
    }

    // Named apart from the C functions, which the same names in this type would hide.
    static func makeDirectory(_ path: FilePath, _ mode: mode_t) -> Int32 { path.withPlatformString { mkdir($0, mode) } }
    static func makeSymlink(_ target: FilePath, _ path: FilePath) -> Int32 {
        target.withPlatformString { t in path.withPlatformString { symlink(t, $0) } }
    }
    static func readSymlink(_ path: FilePath, _ buffer: UnsafeMutablePointer<CChar>, _ size: Int) -> Int {
        path.withPlatformString { readlink($0, buffer, size) }
    }
    static func renameItem(_ from: FilePath, _ to: FilePath) -> Int32 {
        from.withPlatformString { f in to.withPlatformString { rename(f, $0) } }
    }
    static func removeFile(_ path: FilePath) -> Int32 { path.withPlatformString { unlink($0) } }
    static func removeDirectory(_ path: FilePath) -> Int32 { path.withPlatformString { rmdir($0) } }
    static func changeMode(_ path: FilePath, _ mode: mode_t) -> Int32 { path.withPlatformString { chmod($0, mode) } }
    static func changeOwner(_ path: FilePath, _ uid: uid_t, _ gid: gid_t) -> Int32 {
        path.withPlatformString { lchown($0, uid, gid) }
    }
    static func status(_ path: FilePath, _ st: inout stat, followSymlinks: Bool) -> Int32 {
        path.withPlatformString { followSymlinks ? statFollowing($0, &st) : lstat($0, &st) }
    }
    static func openDirectory(_ path: FilePath) -> DirectoryStream? { path.withPlatformString { opendir($0) } }
    static func setTimes(_ path: FilePath, _ times: [timespec]) -> Int32 {
        path.withPlatformString { utimensat(AT_FDCWD, $0, times, AT_SYMLINK_NOFOLLOW) }
    }

    private static func timestamp(_ ts: timespec) -> NFSTimestamp {
        NFSTimestamp(seconds: Int64(ts.tv_sec), nanoseconds: UInt32(clamping: ts.tv_nsec))
    }

    /// The process's file-creation mask, read without changing it.
    ///
    /// `umask(2)` can only be read by setting it, and setting it to 0 even for
    /// a moment races with every other thread that creates files. Linux shows
    /// it in `/proc/self/status`; elsewhere it is read once, by the first
    /// caller, which the tools make happen at start-up before any other thread.
    static var fileCreationMask: mode_t {
        #if os(Linux)
        if let mask = maskFromProcStatus() { return mask }
        #endif
        return cachedMask
    }

    private static let cachedMask: mode_t = {
        let mask = umask(0o022)
        _ = umask(mask)
        return mask
    }()

    #if os(Linux)
    static func maskFromProcStatus() -> mode_t? {
        guard let file = fopen("/proc/self/status", "r") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            guard text.hasPrefix("Umask:") else { continue }
            let digits = text.dropFirst("Umask:".count).filter { !$0.isWhitespace }
            return mode_t(digits, radix: 8)
        }
        return nil
    }
    #endif
}

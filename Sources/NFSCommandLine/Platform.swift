import LibNFS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The C library calls and fields whose names differ between Linux (Glibc)
/// and macOS (Darwin), in one place, as swift-system keeps its own. Linux is
/// tested; the Darwin branches are written for macOS but not run here.
enum Platform {
    #if canImport(Glibc)
    static func mkdir(_ path: String, _ mode: mode_t) -> Int32 { Glibc.mkdir(path, mode) }
    static func symlink(_ target: String, _ path: String) -> Int32 { Glibc.symlink(target, path) }
    static func readlink(_ path: String, _ buffer: UnsafeMutablePointer<CChar>, _ size: Int) -> Int { Glibc.readlink(path, buffer, size) }
    static func rename(_ from: String, _ to: String) -> Int32 { Glibc.rename(from, to) }
    static func unlink(_ path: String) -> Int32 { Glibc.unlink(path) }
    static func chmod(_ path: String, _ mode: mode_t) -> Int32 { Glibc.chmod(path, mode) }
    static func lchown(_ path: String, _ uid: uid_t, _ gid: gid_t) -> Int32 { Glibc.lchown(path, uid, gid) }
    static func accessTime(_ st: stat) -> NFSTimestamp { timestamp(st.st_atim) }
    static func modificationTime(_ st: stat) -> NFSTimestamp { timestamp(st.st_mtim) }
    #else
    static func mkdir(_ path: String, _ mode: mode_t) -> Int32 { Darwin.mkdir(path, mode) }
    static func symlink(_ target: String, _ path: String) -> Int32 { Darwin.symlink(target, path) }
    static func readlink(_ path: String, _ buffer: UnsafeMutablePointer<CChar>, _ size: Int) -> Int { Darwin.readlink(path, buffer, size) }
    static func rename(_ from: String, _ to: String) -> Int32 { Darwin.rename(from, to) }
    static func unlink(_ path: String) -> Int32 { Darwin.unlink(path) }
    static func chmod(_ path: String, _ mode: mode_t) -> Int32 { Darwin.chmod(path, mode) }
    static func lchown(_ path: String, _ uid: uid_t, _ gid: gid_t) -> Int32 { Darwin.lchown(path, uid, gid) }
    static func accessTime(_ st: stat) -> NFSTimestamp { timestamp(st.st_atimespec) }
    static func modificationTime(_ st: stat) -> NFSTimestamp { timestamp(st.st_mtimespec) }
    #endif

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

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
    static let shutdownBoth = Int32(SHUT_RDWR)
}

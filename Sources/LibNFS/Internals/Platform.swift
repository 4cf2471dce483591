#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The C library calls whose module name differs between Linux (Glibc) and
/// macOS (Darwin), in one place, as swift-system keeps its own. Linux is
/// tested; the Darwin branches are written for macOS but not run here.
enum Platform {
    static func closeDescriptor(_ fd: Int32) -> Int32 {
        #if canImport(Glibc)
        Glibc.close(fd)
        #else
        Darwin.close(fd)
        #endif
    }
}

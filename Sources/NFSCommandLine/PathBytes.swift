import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Paths as the bytes the command line and the file system hand over.
extension FilePath {
    /// The path of exactly these bytes (no NUL among them).
    init(bytes: [UInt8]) {
        self.init(platformString: bytes.map(CChar.init(bitPattern:)) + [0])
    }
}

extension FilePath.Component {
    /// The name's bytes.
    var bytes: [UInt8] { withPlatformString(bytes(ofCString:)) }
}

/// The bytes of a NUL-terminated C string.
func bytes(ofCString string: UnsafePointer<CChar>) -> [UInt8] {
    UnsafeRawBufferPointer(start: string, count: strlen(string)).map { $0 }
}

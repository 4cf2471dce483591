#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The libnfs this program runs against: which file was loaded, which release
/// that is, and what its API offers.
///
/// libnfs has no call that reports its version, so the release is read from
/// the loaded library's file name (`libnfs.so.17.0.0` is 7.0.0) and the API
/// generation from the header it was compiled against.
public enum NFSLibrary {
    /// The path of the libnfs shared library loaded into this process, as the
    /// dynamic linker resolved it (symbolic links followed); nil if unknown.
    public static let path: String? = {
        guard let address = Syscalls.symbolAddress else { return nil }
        #if os(Linux)
        return mappedFile(containing: UInt(bitPattern: address))
        #else
        var info = Dl_info()
        guard dladdr(address, &info) != 0, let name = info.dli_fname else { return nil }
        guard let resolved = realpath(name, nil) else { return String(cString: name) }
        defer { free(resolved) }
        return String(cString: resolved)
        #endif
    }()

    #if os(Linux)
    /// The file mapped at `address`, from `/proc/self/maps` (the kernel lists
    /// real paths there; Swift's Glibc module does not offer `dladdr`).
    private static func mappedFile(containing address: UInt) -> String? {
        guard let file = fopen("/proc/self/maps", "r") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            // start-end perms offset dev inode path
            let fields = String(cString: line).split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6 else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                  start <= address, address < end else { continue }
            var path = fields[5...].joined(separator: " ")
            while path.last == "\n" { path.removeLast() }
            return path
        }
        return nil
    }
    #endif

    /// The version in the library's file name (`17.0.0` for `libnfs.so.17.0.0`,
    /// `16.2.0` for `libnfs.16.2.0.dylib`): the shared-object version, not the release.
    public static var fileVersion: String? {
        guard let path else { return nil }
        let file = path.split(separator: "/").last.map(String.init) ?? path
        let afterName = file.hasPrefix("libnfs.so.") ? file.dropFirst("libnfs.so.".count) : file.dropFirst("libnfs.".count)
        let digits = afterName.hasSuffix(".dylib") ? afterName.dropLast(".dylib".count) : afterName
        guard !digits.isEmpty, digits.allSatisfy({ $0.isNumber || $0 == "." }) else { return nil }
        return String(digits)
    }

    /// The libnfs release, where the library's file version identifies one:
    /// those this package is tested with (4.0.0 as Debian 12 ships it, 5.0.3,
    /// 6.0.2, 7.0.0) and files named after their release.
    public static var release: String? {
        switch fileVersion {
        case "13.0.0": return "4.0.0"
        case "11.2.0", "14.0.0": return "5.0.3"
        case "16.2.0": return "6.0.2"
        case "17.0.0": return "7.0.0"
        case let version?:
            // libnfs 5's CMake build names the file after the release itself (libnfs.so.5.0.3);
            // shared-object versions start at 11.
            let major = version.split(separator: ".").first.flatMap { Int($0) } ?? 0
            return major < 11 ? version : nil
        case nil: return nil
        }
    }

    /// True when this libnfs's NFSv4 client is one this package trusts with data:
    /// libnfs 7.0.0 and later (shared-object version 17 and up). 4.0.0's v4
    /// client is unfinished upstream (readMax 0, large writes refused), and
    /// 6.0.2's fails to create files; mounting v4 with them throws instead.
    public static var supportsNFSv4: Bool {
        guard let major = fileMajorVersion else { return false }
        return major >= 17
    }

    /// The first number of ``fileVersion`` (17 for libnfs 7.0.0), when known.
    static var fileMajorVersion: Int? {
        fileVersion?.split(separator: ".").first.flatMap { Int($0) }
    }

    /// 2 for libnfs 6 and later ("API v2"), 1 before: from the header compiled against.
    public static var apiVersion: Int { Syscalls.apiVersion }

    /// True when this libnfs has a read-ahead of its own (4.x, 5.x). LibNFS
    /// leaves it off and reads ahead itself on every version; see ``NFSOptions/readahead``.
    public static var hasReadahead: Bool { Syscalls.hasReadaheadSetter }

    /// One line for `--version` output: `libnfs 7.0.0 (API v2, /usr/lib/libnfs.so.17.0.0)`.
    public static var description: String {
        let version = release ?? fileVersion.map { "(file version \($0))" } ?? "(version unknown)"
        return "libnfs \(version) (API v\(apiVersion), \(path ?? "path unknown"))"
    }
}

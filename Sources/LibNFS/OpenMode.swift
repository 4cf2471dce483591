#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a file is opened: Python's modes (`r r+ w w+ a a+ x x+`, `b` ignored)
/// or explicit flags.
public struct NFSOpenFlags: OptionSet, Sendable, Hashable {
    /// The bits of the set.
    public let rawValue: Int32
    /// Creates a set from its bits.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Open for reading.
    public static let read = NFSOpenFlags(rawValue: 1 << 0)
    /// Open for writing.
    public static let write = NFSOpenFlags(rawValue: 1 << 1)
    /// Create the file if it does not exist (`O_CREAT`).
    public static let create = NFSOpenFlags(rawValue: 1 << 2)
    /// Truncate to zero length on open (`O_TRUNC`).
    public static let truncate = NFSOpenFlags(rawValue: 1 << 3)
    /// Every write goes to the end of the file (`O_APPEND`).
    public static let append = NFSOpenFlags(rawValue: 1 << 4)
    /// With ``create``: fail with `EEXIST` if the file exists (`O_EXCL`).
    public static let exclusive = NFSOpenFlags(rawValue: 1 << 5)
    /// Every write is committed to stable storage before it returns (`O_SYNC`).
    public static let sync = NFSOpenFlags(rawValue: 1 << 6)

    /// Parses a Python-style mode string; throws `EINVAL` for anything else.
    public init(mode: String) throws {
        let core = mode.filter { $0 != "b" }
        switch core {
        case "r": self = [.read]
        case "r+": self = [.read, .write]
        case "w": self = [.write, .create, .truncate]
        case "w+": self = [.read, .write, .create, .truncate]
        case "a": self = [.write, .create, .append]
        case "a+": self = [.read, .write, .create, .append]
        case "x": self = [.write, .create, .exclusive]
        case "x+": self = [.read, .write, .create, .exclusive]
        default:
            throw NFSError(code: .invalidArgument, operation: "open", path: nil,
                           detail: "invalid mode \"\(mode)\"; use r, r+, w, w+, a, a+, x or x+")
        }
    }

    var posixFlags: Int32 {
        var flags: Int32
        switch (contains(.read), contains(.write)) {
        case (_, false): flags = O_RDONLY
        case (false, true): flags = O_WRONLY
        case (true, true): flags = O_RDWR
        }
        if contains(.create) { flags |= O_CREAT }
        if contains(.truncate) { flags |= O_TRUNC }
        if contains(.append) { flags |= O_APPEND }
        if contains(.exclusive) { flags |= O_EXCL }
        if contains(.sync) { flags |= O_SYNC }
        return flags
    }

    /// The Python-style mode string closest to these flags.
    var modeString: String {
        let plus = contains(.read) && contains(.write)
        if contains(.append) { return plus ? "a+" : "a" }
        if contains(.exclusive) { return plus ? "x+" : "x" }
        if contains(.truncate) { return plus ? "w+" : "w" }
        if contains(.write) && !contains(.read) { return "w" }
        return plus ? "r+" : "r"
    }
}

/// Where ``NFSFileHandle/seek(_:whence:)`` counts from.
public enum Whence: Sendable, Hashable {
    /// From the start of the file.
    case set
    /// From the current position.
    case current
    /// From the end of the file.
    case end
}

import SystemPackage

/// A point in time as the server reports it: seconds since 1970 and nanoseconds.
public struct NFSTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Whole seconds since 1970-01-01 00:00:00 UTC.
    public var seconds: Int64
    /// Nanoseconds past ``seconds`` (0 ..< 1 000 000 000).
    public var nanoseconds: UInt32

    /// Creates a timestamp.
    public init(seconds: Int64, nanoseconds: UInt32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// Seconds since 1970 as a floating-point value.
    public var timeIntervalSince1970: Double { Double(seconds) + Double(nanoseconds) / 1e9 }

    /// Earlier timestamps order first.
    public static func < (a: NFSTimestamp, b: NFSTimestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }

    /// `seconds.nanoseconds`, such as `1500000000.250000000`.
    /// A server may send a nanosecond field of 10⁹ or more; it is shown as sent, never trapping.
    public var description: String {
        let digits = String(nanoseconds)
        return "\(seconds)." + String(repeating: "0", count: max(0, 9 - digits.count)) + digits
    }
}

/// The kind of a file system object.
public enum NFSFileType: Sendable, Hashable {
    case regular, directory, symbolicLink, blockDevice, characterDevice, fifo, socket, unknown

    init(mode: UInt32) {
        switch mode & 0o170000 {
        case 0o100000: self = .regular
        case 0o040000: self = .directory
        case 0o120000: self = .symbolicLink
        case 0o060000: self = .blockDevice
        case 0o020000: self = .characterDevice
        case 0o010000: self = .fifo
        case 0o140000: self = .socket
        default: self = .unknown
        }
    }
}

/// Attributes of a file on the share, as returned by ``NFSContext/stat(_:)``,
/// ``NFSContext/lstat(_:)`` and ``NFSFileHandle/stat()``. Maps `struct nfs_stat_64`.
public struct NFSStat: Sendable, Hashable {
    /// The device the file lives on.
    public var device: UInt64
    /// The file's inode (file id) number.
    public var inode: UInt64
    /// The full mode: file type bits and permission bits, as in `st_mode`.
    public var mode: UInt32
    /// The number of hard links.
    public var nlink: UInt64
    /// The owner's user id.
    public var uid: UInt32
    /// The owner's group id.
    public var gid: UInt32
    /// The device number, for device files.
    public var rdev: UInt64
    /// The size in bytes.
    public var size: UInt64
    /// The preferred I/O block size.
    public var blockSize: UInt64
    /// The number of 512-byte blocks allocated.
    public var blocks: UInt64
    /// Bytes of disk space the file actually uses.
    public var used: UInt64
    /// Last access.
    public var accessTime: NFSTimestamp
    /// Last modification of the contents.
    public var modificationTime: NFSTimestamp
    /// Last change of the attributes.
    public var changeTime: NFSTimestamp

    /// Creates a value; the library fills these from the server's replies.
    public init(device: UInt64, inode: UInt64, mode: UInt32, nlink: UInt64, uid: UInt32, gid: UInt32,
                rdev: UInt64, size: UInt64, blockSize: UInt64, blocks: UInt64, used: UInt64,
                accessTime: NFSTimestamp, modificationTime: NFSTimestamp, changeTime: NFSTimestamp) {
        self.device = device; self.inode = inode; self.mode = mode; self.nlink = nlink
        self.uid = uid; self.gid = gid; self.rdev = rdev; self.size = size
        self.blockSize = blockSize; self.blocks = blocks; self.used = used
        self.accessTime = accessTime; self.modificationTime = modificationTime; self.changeTime = changeTime
    }

    /// The kind of object (regular file, directory, symbolic link, …).
    public var type: NFSFileType { NFSFileType(mode: mode) }
    /// The permission bits (including setuid, setgid and sticky).
    public var permissions: FilePermissions { FilePermissions(rawValue: CInterop.Mode(mode & 0o7777)) }
    /// True for a regular file.
    public var isFile: Bool { type == .regular }
    /// True for a directory.
    public var isDirectory: Bool { type == .directory }
    /// True for a symbolic link (only ``NFSContext/lstat(_:)`` reports these).
    public var isSymlink: Bool { type == .symbolicLink }
}

/// File-system-wide figures from ``NFSContext/statvfs(_:)``. Maps `struct nfs_statvfs_64`.
public struct NFSFileSystemStats: Sendable, Hashable {
    /// The file system's block size (`f_bsize`).
    public var blockSize: UInt64
    /// The unit of ``blocks`` and its siblings (`f_frsize`).
    public var fragmentSize: UInt64
    /// Size of the file system in ``fragmentSize`` units.
    public var blocks: UInt64
    /// Free blocks (`f_bfree`).
    public var freeBlocks: UInt64
    /// Free blocks available to unprivileged users.
    public var availableBlocks: UInt64
    /// Total file nodes (`f_files`).
    public var files: UInt64
    /// Free file nodes (`f_ffree`).
    public var freeFiles: UInt64
    /// File nodes available to unprivileged users (`f_favail`).
    public var availableFiles: UInt64
    /// The file system id (`f_fsid`).
    public var fileSystemID: UInt64
    /// Mount flags (`f_flag`).
    public var flags: UInt64
    /// The longest file name allowed, in bytes (`f_namemax`). Over NFSv3 this is
    /// not the server's figure: FSSTAT carries none, and libnfs reports 256 for
    /// every server (most allow 255). Over NFSv4 it is the server's.
    public var maximumNameLength: UInt64

    /// Creates a value; the library fills these from the server's replies.
    public init(blockSize: UInt64, fragmentSize: UInt64, blocks: UInt64, freeBlocks: UInt64, availableBlocks: UInt64,
                files: UInt64, freeFiles: UInt64, availableFiles: UInt64, fileSystemID: UInt64, flags: UInt64,
                maximumNameLength: UInt64) {
        self.blockSize = blockSize; self.fragmentSize = fragmentSize; self.blocks = blocks
        self.freeBlocks = freeBlocks; self.availableBlocks = availableBlocks; self.files = files
        self.freeFiles = freeFiles; self.availableFiles = availableFiles; self.fileSystemID = fileSystemID
        self.flags = flags; self.maximumNameLength = maximumNameLength
    }

    private var unit: UInt64 { fragmentSize != 0 ? fragmentSize : blockSize }
    /// Total size in bytes.
    public var totalBytes: UInt64 { blocks &* unit }
    /// Free bytes.
    public var freeBytes: UInt64 { freeBlocks &* unit }
    /// Bytes available to unprivileged users.
    public var availableBytes: UInt64 { availableBlocks &* unit }
}

/// One entry of a directory listing with the attributes READDIRPLUS returned for it.
public struct NFSDirectoryEntry: Sendable, Hashable {
    /// The entry's name (never `.` or `..`), byte for byte as the server holds it.
    public var name: FilePath.Component
    /// The entry's attributes, as of the listing.
    public var stat: NFSStat
}

import SystemPackage

/// A path on a share, as the methods of ``NFSContext`` take it.
///
/// NFSv3 file names are opaque bytes: a server may hold `caf\xE9.txt` in
/// Latin-1 or a name with a newline. `FilePath` and `FilePath.Component` keep
/// such bytes exactly, so names that ``NFSContext/listdir(_:)`` returns can be
/// passed back unchanged; `String` stays the convenient form for names that
/// are text (a string literal is a `String`).
///
/// ```swift
/// for name in try nfs.listdir("/inbox") {          // [FilePath.Component]
///     let st = try nfs.stat(FilePath("/inbox").appending(name))
/// }
/// ```
///
/// `FilePath` removes repeated and trailing separators (`/a//b/` is `/a/b`),
/// which names the same file on an NFS server.
public protocol NFSPathRepresentable: Sendable {
    /// The path's bytes.
    var nfsFilePath: FilePath { get }
}

extension FilePath: NFSPathRepresentable {
    /// The path itself.
    public var nfsFilePath: FilePath { self }
}

extension FilePath.Component: NFSPathRepresentable {
    /// A relative path of this one component.
    public var nfsFilePath: FilePath { FilePath(root: nil, [self]) }
}

extension String: NFSPathRepresentable {
    /// The string's UTF-8 bytes as a path.
    public var nfsFilePath: FilePath { FilePath(self) }
}

extension Substring: NFSPathRepresentable {
    /// The substring's UTF-8 bytes as a path.
    public var nfsFilePath: FilePath { FilePath(String(self)) }
}

extension FilePath {
    /// The path as one line of text for messages: valid UTF-8 as it is, every
    /// other byte, control character and backslash escaped, so that nothing is
    /// silently replaced: `caf\xE9.txt`, `two\nlines`, `back\\slash`.
    public var escapedDescription: String { PathText.escaped(PathText.bytes(of: self)) }
}

extension FilePath.Component {
    /// The name as one line of text, escaped as ``SystemPackage/FilePath/escapedDescription``.
    public var escapedDescription: String { nfsFilePath.escapedDescription }
}

/// Bytes of paths, and their escaped text.
enum PathText {
    static func bytes(of path: FilePath) -> [UInt8] {
        path.withPlatformString { pointer in
            var bytes: [UInt8] = []
            var p = pointer
            while p.pointee != 0 {
                bytes.append(UInt8(bitPattern: p.pointee))
                p += 1
            }
            return bytes
        }
    }

    /// Two uppercase hex digits.
    static func hexDigits(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "\(digits[Int(byte >> 4)])\(digits[Int(byte & 0xF)])"
    }

    static func path(_ bytes: some Sequence<UInt8>) -> FilePath {
        FilePath(platformString: bytes.map { CInterop.PlatformChar(bitPattern: $0) } + [0])
    }

    /// Valid UTF-8 kept; invalid bytes, C0/C1 controls and DEL as `\xNN`;
    /// newline, tab and carriage return as `\n`, `\t`, `\r`; backslash doubled.
    static func escaped(_ bytes: [UInt8]) -> String {
        var text = ""
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        func hex(_ byte: UInt8) -> String { "\\x" + hexDigits(byte) }
        loop: while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                let scalar = Unicode.UTF8.decode(encoded)
                offset += encoded.count
                switch scalar.value {
                case 0x5C: text += "\\\\"
                case 0x0A: text += "\\n"
                case 0x09: text += "\\t"
                case 0x0D: text += "\\r"
                case 0..<0x20, 0x7F: text += hex(UInt8(scalar.value))
                case 0x80..<0xA0: text += encoded.map(hex).joined()
                default: text.unicodeScalars.append(scalar)
                }
            case .error(let length):
                for byte in bytes[offset..<offset + length] { text += hex(byte) }
                offset += length
            case .emptyInput:
                break loop
            }
        }
        return text
    }
}

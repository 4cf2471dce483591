/// `--exclude` and `--include` rules, matched as rsync matches them, on the
/// bytes of names (so a name that is not UTF-8 can be matched too):
///
/// - the first rule that matches decides; a path no rule matches is included;
/// - a pattern with a `/` (other than a trailing one) is anchored to the source
///   root and matched against the whole path below it (`a/b.txt`); one without
///   is matched against the last name of every path, so it matches at any depth;
/// - a trailing `/` matches only directories;
/// - `*` matches any bytes but `/`, `?` one byte but `/`, `[abc]`, `[a-z]` and
///   `[!a]` one byte of a set, `**` any bytes including `/` (`**/` also none
///   at all, so `a/**/b` matches `a/b`), and `\` takes the next byte as it is.
public struct PathFilter: Sendable {
    public enum Action: Sendable { case include, exclude }

    private struct Rule: Sendable {
        let action: Action
        let pattern: [UInt8]
        let anchored: Bool
        let directoriesOnly: Bool
    }

    private var rules: [Rule] = []

    public init() {}

    public var isEmpty: Bool { rules.isEmpty }

    /// Adds a rule after those already added.
    /// - Throws: ``CopyUsageError`` for an empty pattern.
    public mutating func add(_ action: Action, pattern: [UInt8]) throws {
        var body = pattern[...]
        let directoriesOnly = body.last == UInt8(ascii: "/")
        while body.last == UInt8(ascii: "/") { body = body.dropLast() }
        let anchored = body.contains(UInt8(ascii: "/"))
        while body.first == UInt8(ascii: "/") { body = body.dropFirst() }
        guard !body.isEmpty else {
            let option = action == .include ? "--include" : "--exclude"
            throw CopyUsageError(description: "\(option) needs a pattern with a name in it, not '\(String(decoding: pattern, as: UTF8.self))'")
        }
        rules.append(Rule(action: action, pattern: Array(body), anchored: anchored, directoriesOnly: directoriesOnly))
    }

    /// Whether the rules leave out `path`, given relative to the source root (`a/b.txt`, no leading `/`).
    public func excludes(_ path: [UInt8], isDirectory: Bool) -> Bool {
        guard !rules.isEmpty else { return false }
        let name = path.lastIndex(of: UInt8(ascii: "/")).map { path[($0 + 1)...] } ?? path[...]
        for rule in rules where isDirectory || !rule.directoriesOnly {
            if Self.matches(rule.pattern[...], rule.anchored ? path[...] : name) {
                return rule.action == .exclude
            }
        }
        return false
    }

    private static let slash = UInt8(ascii: "/"), star = UInt8(ascii: "*"), question = UInt8(ascii: "?")
    private static let open = UInt8(ascii: "["), close = UInt8(ascii: "]"), backslash = UInt8(ascii: "\\")

    /// Glob matching by backtracking; patterns and paths are short, so the
    /// worst case (many stars) stays small in practice.
    static func matches(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>) -> Bool {
        var p = pattern.startIndex
        var t = text.startIndex
        while p < pattern.endIndex {
            let c = pattern[p]
            if c == star {
                let double = p + 1 < pattern.endIndex && pattern[p + 1] == star
                var rest = p + (double ? 2 : 1)
                // `**/` also matches no directory at all.
                if double, rest < pattern.endIndex, pattern[rest] == slash,
                   matches(pattern[(rest + 1)...], text[t...]) {
                    return true
                }
                if double { while rest < pattern.endIndex && pattern[rest] == star { rest += 1 } }
                var end = t
                while true {
                    if matches(pattern[rest...], text[end...]) { return true }
                    if end == text.endIndex || (!double && text[end] == slash) { return false }
                    end += 1
                }
            }
            guard t < text.endIndex else { return false }
            let byte = text[t]
            switch c {
            case question:
                guard byte != slash else { return false }
                p += 1
            case open:
                guard let (matched, next) = matchSet(pattern, from: p, byte: byte) else {
                    // An unclosed `[` is a literal.
                    guard byte == c else { return false }
                    p += 1
                    break
                }
                guard matched, byte != slash else { return false }
                p = next
            case backslash where p + 1 < pattern.endIndex:
                guard byte == pattern[p + 1] else { return false }
                p += 2
            default:
                guard byte == c else { return false }
                p += 1
            }
            t += 1
        }
        return t == text.endIndex
    }

    /// Matches `byte` against the set that starts at `start` (`[`); nil when it is not closed.
    private static func matchSet(_ pattern: ArraySlice<UInt8>, from start: Int, byte: UInt8) -> (Bool, Int)? {
        var i = start + 1
        let negated = i < pattern.endIndex && (pattern[i] == UInt8(ascii: "!") || pattern[i] == UInt8(ascii: "^"))
        if negated { i += 1 }
        var matched = false
        var first = true
        while i < pattern.endIndex {
            var low = pattern[i]
            if low == close && !first { return (matched != negated, i + 1) }
            first = false
            if low == backslash && i + 1 < pattern.endIndex { i += 1; low = pattern[i] }
            var high = low
            if i + 2 < pattern.endIndex && pattern[i + 1] == UInt8(ascii: "-") && pattern[i + 2] != close {
                high = pattern[i + 2]
                i += 2
            }
            if low <= byte && byte <= high { matched = true }
            i += 1
        }
        return nil
    }
}

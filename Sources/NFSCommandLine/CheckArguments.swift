import ArgumentParser

/// Parsing of nfs-check's option values, kept apart so the command stays a list of options.
public enum CheckArguments {
    /// `1234`, `10G`, `512M`, `10%` → a free-space threshold.
    public static func freeSpace(_ text: String) throws -> CheckPlan.FreeSpace {
        if text.hasSuffix("%") {
            guard let p = Double(text.dropLast()), p >= 0, p <= 100 else {
                throw ValidationError("--min-free percentage must be from 0% to 100%, not \"\(text)\"")
            }
            return .percent(p)
        }
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = Substring(text)
        var multiplier: UInt64 = 1
        if let last = digits.last?.uppercased().first, let unit = units[last] {
            multiplier = unit
            digits = digits.dropLast()
        }
        guard let n = UInt64(digits) else {
            throw ValidationError("--min-free takes bytes (with K, M, G or T) or a percentage, not \"\(text)\"")
        }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { throw ValidationError("--min-free \"\(text)\" is too large") }
        return .bytes(bytes)
    }

    /// Matches `PATH=VALUE` (or a bare VALUE when there is exactly one --read) to the index of its --read.
    public static func perFile(_ values: [String], reads: [String], option: String) throws -> [(Int, String)] {
        try values.map { value in
            if let eq = value.lastIndex(of: "=") {
                let path = String(value[..<eq])
                guard let index = reads.firstIndex(of: path) else {
                    throw ValidationError("\(option) names \"\(path)\", which is not a --read file")
                }
                return (index, String(value[value.index(after: eq)...]))
            }
            guard reads.count == 1 else {
                throw ValidationError("\(option) needs PATH=VALUE when there is not exactly one --read")
            }
            return (0, value)
        }
    }
}

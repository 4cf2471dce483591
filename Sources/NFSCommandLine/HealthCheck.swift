import Crypto
import Dispatch
import Foundation
import LibNFS
import SystemPackage
import Synchronization

/// A check's outcome, ordered by severity, with the monitoring plugins' exit codes (Nagios/Icinga).
public enum CheckStatus: Int32, Sendable, Comparable, Codable, CustomStringConvertible {
    case ok = 0, warning = 1, critical = 2, unknown = 3
    public static func < (a: CheckStatus, b: CheckStatus) -> Bool { a.rawValue < b.rawValue }
    public var description: String {
        switch self {
        case .ok: "OK"
        case .warning: "WARNING"
        case .critical: "CRITICAL"
        case .unknown: "UNKNOWN"
        }
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// One timed step of a check run.
public struct CheckStep: Sendable, Codable {
    public var name: String
    public var status: CheckStatus
    public var milliseconds: Double
    public var detail: String
    /// Figures for machine output (bytes, bytes per second, …), keyed by metric suffix.
    public var values: [String: Double]
}

/// All steps of one round and their combined status.
public struct CheckReport: Sendable, Codable {
    public var url: String
    public var round: Int
    public var status: CheckStatus
    public var milliseconds: Double
    public var steps: [CheckStep]
}

/// What to check; built by nfs-check from its arguments.
public struct CheckPlan: Sendable {
    /// A size or a share of the file system.
    public enum FreeSpace: Sendable, Equatable {
        case bytes(UInt64)
        case percent(Double)
    }

    /// A file to read, with what it must be.
    public struct Read: Sendable {
        /// Relative to the URL's directory; bytes, so names that are not UTF-8 work.
        public var path: FilePath
        public var expectedSize: UInt64?
        public var expectedSHA256: String?
        public init(path: FilePath, expectedSize: UInt64? = nil, expectedSHA256: String? = nil) {
            self.path = path; self.expectedSize = expectedSize; self.expectedSHA256 = expectedSHA256
        }
    }

    public var url: String
    public var minimumFree: FreeSpace?
    public var reads: [Read] = []
    public var writeTest = false
    public var warnMilliseconds: Double?
    public var criticalMilliseconds: Double?
    public var deadline: Duration = .seconds(10)

    public init(url: String) { self.url = url }
}

/// Runs a ``CheckPlan`` against a share: mount, statvfs, list, reads, write test,
/// each timed, all within one deadline.
public enum HealthCheck {
    private static func milliseconds(_ d: Duration) -> Double { d.inSeconds * 1000 }

    /// Runs every step of `plan` on a worker thread and waits at most `plan.deadline`:
    /// a step still running then is reported CRITICAL, and the run ends there.
    public static func run(_ plan: CheckPlan, round: Int = 1) -> CheckReport {
        let start = ContinuousClock.now
        let progress = StepLog()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            runSteps(plan, progress: progress)
            done.signal()
        }
        let finished = done.wait(timeout: .now() + plan.deadline.inSeconds) == .success
        var steps = progress.state.withLock { $0.steps }
        if !finished {
            let current = progress.state.withLock { $0.current }
            var detail = "no answer within the \(Format.duration(plan.deadline.inSeconds)) deadline"
            if let leftover = progress.writeTestFile.withLock({ $0 }) {
                detail += removeOnSecondConnection(leftover, plan: plan)
                    ? "; its test file was removed" : "; its test file \(leftover.escapedDescription) could not be removed yet"
            }
            steps.append(CheckStep(name: current, status: .critical, milliseconds: milliseconds(ContinuousClock.now - start),
                                   detail: detail, values: [:]))
        }
        let status = steps.map(\.status).max() ?? .unknown
        return CheckReport(url: plan.url, round: round, status: status,
                           milliseconds: milliseconds(ContinuousClock.now - start), steps: steps)
    }

    /// What the worker thread has done so far, for the deadline to report.
    private final class StepLog: Sendable {
        let state = Mutex<(steps: [CheckStep], current: String)>(([], "mount"))
        /// The write test's file while it may exist, for a deadline to remove.
        let writeTestFile = Mutex<FilePath?>(nil)
    }

    /// How long a deadline that cut the write test short may add to remove its file.
    static let cleanupBudget: Duration = .seconds(2)
    /// Write-test files older than this are left by runs that could not clean up, and removed.
    static let staleAge: Int64 = 86_400

    /// The worker still holds the first context, stuck in a call: a second
    /// mount removes the write test's file, within ``cleanupBudget``.
    private static func removeOnSecondConnection(_ file: FilePath, plan: CheckPlan) -> Bool {
        let done = DispatchSemaphore(value: 0)
        let removed = Mutex(false)
        Thread.detachNewThread {
            if let nfs = try? NFSContext(url: plan.url, options: NFSOptions(timeout: cleanupBudget)) {
                let gone = (try? nfs.unlink(file)) != nil || (try? nfs.exists(file)) == false
                removed.withLock { $0 = gone }
                try? nfs.close()
            }
            done.signal()
        }
        _ = done.wait(timeout: .now() + cleanupBudget.inSeconds + 0.5)
        return removed.withLock { $0 }
    }

    /// Removes `.nfs-check-*` files in the root that are over a day old: a
    /// run whose server vanished mid-test could not remove its own.
    private static func removeStaleTestFiles(_ nfs: NFSContext) throws -> Int {
        let now = Int64(Date().timeIntervalSince1970)
        var removed = 0
        for entry in try nfs.scandir("/") where entry.name.string.hasPrefix(".nfs-check-") && entry.stat.isFile
            && now - entry.stat.modificationTime.seconds > staleAge {
            try nfs.unlink(FilePath(root: "/", [entry.name]))
            removed += 1
        }
        return removed
    }

    private static func runSteps(_ plan: CheckPlan, progress: StepLog) {
        // Each step records itself; only a failed mount ends the run, so one report says everything it can.
        @discardableResult
        func step(_ name: String, _ body: () throws -> (String, [String: Double], CheckStatus)) -> Bool {
            progress.state.withLock { $0.current = name }
            let start = ContinuousClock.now
            var result: CheckStep
            do {
                let (detail, values, verdict) = try body()
                let ms = milliseconds(ContinuousClock.now - start)
                var status = verdict
                var detail2 = detail
                if let crit = plan.criticalMilliseconds, ms > crit {
                    status = max(status, .critical); detail2 += "; slower than \(crit) ms"
                } else if let warn = plan.warnMilliseconds, ms > warn {
                    status = max(status, .warning); detail2 += "; slower than \(warn) ms"
                }
                result = CheckStep(name: name, status: status, milliseconds: ms, detail: detail2, values: values)
            } catch {
                result = CheckStep(name: name, status: .critical, milliseconds: milliseconds(ContinuousClock.now - start),
                                   detail: "\(error)", values: [:])
            }
            progress.state.withLock { $0.steps.append(result) }
            return result.status != .critical
        }

        var nfs: NFSContext?
        defer { try? nfs?.close() }
        let mounted = step("mount") {
            let context = try NFSContext(url: plan.url, options: NFSOptions(timeout: plan.deadline))
            nfs = context
            return ("mounted; readMax \(Format.bytes(UInt64(context.readMax))), writeMax \(Format.bytes(UInt64(context.writeMax)))",
                    [:], .ok)
        }
        guard mounted, let nfs else { return }

        step("statvfs") {
            let vfs = try nfs.statvfs("/")
            let percent = vfs.totalBytes > 0 ? Double(vfs.availableBytes) * 100 / Double(vfs.totalBytes) : 0
            var detail = "\(Format.bytes(vfs.availableBytes)) free of \(Format.bytes(vfs.totalBytes)) (\(String(format: "%.1f", percent))%)"
            var status = CheckStatus.ok
            switch plan.minimumFree {
            case .bytes(let minimum)? where vfs.availableBytes < minimum:
                status = .critical; detail = "only " + detail + "; at least \(Format.bytes(minimum)) required"
            case .percent(let minimum)? where percent < minimum:
                status = .critical; detail = "only " + detail + "; at least \(minimum)% required"
            default: break
            }
            return (detail, ["free_bytes": Double(vfs.availableBytes), "total_bytes": Double(vfs.totalBytes)], status)
        }

        step("list") {
            let names = try nfs.listdir("/")
            return ("\(names.count) entries", ["entries": Double(names.count)], .ok)
        }

        for read in plan.reads {
            let path = FilePath(root: "/", read.path.components)
            step("read \(read.path.escapedDescription)") {
                let start = ContinuousClock.now
                var hasher = SHA256()
                var size: UInt64 = 0
                try nfs.withFile(path) { file in
                    var buffer = [UInt8](repeating: 0, count: nfs.readSize)
                    while true {
                        let n = try buffer.withUnsafeMutableBytes { try file.read(into: $0) }
                        if n == 0 { break }
                        size += UInt64(n)
                        buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<n])) }
                    }
                }
                let elapsed = max(milliseconds(ContinuousClock.now - start) / 1000, 1e-6)
                let rate = Double(size) / elapsed
                let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
                var detail = "\(Format.bytes(size)) at \(Format.bytes(UInt64(rate)))/s"
                var status = CheckStatus.ok
                if let expected = read.expectedSize, expected != size {
                    status = .critical; detail = "size \(size), expected \(expected); " + detail
                }
                if let expected = read.expectedSHA256?.lowercased(), expected != digest {
                    status = .critical; detail = "sha256 \(digest), expected \(expected); " + detail
                } else if read.expectedSHA256 != nil {
                    detail += "; sha256 matches"
                }
                return (detail, ["bytes": Double(size), "bytes_per_second": rate], status)
            }
        }

        if plan.writeTest {
            step("write-test") {
                let stale = try removeStaleTestFiles(nfs)
                let name = FilePath("/.nfs-check-\(UInt64.random(in: 0...UInt64.max).hex)")
                let pattern = (0..<(256 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
                var created = false
                // Set before the create: a deadline during the create may leave the file behind too.
                progress.writeTestFile.withLock { $0 = name }
                do {
                    try nfs.withFile(name, mode: "x", permissions: 0o600) { file in
                        created = true
                        try file.write(pattern)
                        try file.fsync()
                    }
                    let back = try nfs.withFile(name) { try $0.readAll() }
                    guard back == pattern else {
                        throw FileOperationError(operation: "verify", path: name.escapedDescription, reason: "read back different bytes")
                    }
                } catch {
                    if created { try? nfs.unlink(name) }
                    throw error
                }
                try nfs.unlink(name)
                progress.writeTestFile.withLock { $0 = nil }
                return ("\(Format.bytes(UInt64(pattern.count))) written, synced, read back and removed"
                            + (stale > 0 ? "; \(stale) stale test file\(stale == 1 ? "" : "s") over a day old removed" : ""),
                        [:], .ok)
            }
        }
    }
}

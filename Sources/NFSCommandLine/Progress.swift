import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Terminal facts for deciding whether to draw a progress line.
public enum Terminal {
    /// True when standard error is a terminal that understands `\r` and erase-line.
    public static var standardErrorIsInteractive: Bool {
        isatty(2) == 1 && ProcessInfo.processInfo.environment["TERM"].map { $0 != "dumb" && !$0.isEmpty } ?? false
    }
}

extension Duration {
    /// The duration in seconds, as one floating-point number.
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// Human-readable sizes and durations.
public enum Format {
    public static func bytes(_ count: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--:--" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                         : String(format: "%02d:%02d", s / 60, s % 60)
    }
}

/// Counts bytes and files from any thread and, when enabled, reports on
/// standard error: on a terminal it redraws one status line about ten times a
/// second and ``finish()`` clears it; elsewhere (a pipe, a log) it writes a
/// plain line about once a second and a last one at the end, never a control character.
public final class ProgressLine: Sendable {
    private let bytesDone = Atomic<UInt64>(0)
    private let filesDone = Atomic<Int>(0)
    private let totals = Mutex<(bytes: UInt64, files: Int)>((0, 0))
    private let running = Atomic<Bool>(false)
    private let stopped = Mutex<Bool>(false)
    private let start = ContinuousClock.now
    private let enabled: Bool
    private let interactive: Bool

    /// `interactive` chooses between redrawing one line and writing plain lines.
    public init(enabled: Bool, interactive: Bool = Terminal.standardErrorIsInteractive) {
        self.enabled = enabled
        self.interactive = interactive
    }

    public func setTotals(bytes: UInt64, files: Int) { totals.withLock { $0 = (bytes, files) } }
    public func add(bytes: Int) { bytesDone.add(UInt64(bytes), ordering: .relaxed) }
    public func fileFinished() { filesDone.add(1, ordering: .relaxed) }
    public var bytes: UInt64 { bytesDone.load(ordering: .relaxed) }
    public var elapsedSeconds: Double { (ContinuousClock.now - start).inSeconds }

    /// Starts redrawing on a background thread (no-op unless enabled).
    public func startDrawing() {
        guard enabled, !running.exchange(true, ordering: .relaxed) else { return }
        Thread.detachNewThread { [self] in
            // Drawing under the lock that finish() takes, so no line appears after it is cleared.
            var ticks = 0
            while stopped.withLock({ s -> Bool in if !s && (interactive || ticks % 10 == 9) { draw() }; return !s }) {
                usleep(100_000)
                ticks += 1
            }
        }
    }

    private func draw() {
        let (totalBytes, totalFiles) = totals.withLock { $0 }
        let done = bytes
        let seconds = max(elapsedSeconds, 0.001)
        let rate = Double(done) / seconds
        let eta = rate > 0 && totalBytes > done ? Double(totalBytes - done) / rate : 0
        let percent = totalBytes > 0 ? Int(Double(done) * 100 / Double(totalBytes)) : 100
        let line = "\(Format.bytes(done)) / \(Format.bytes(totalBytes)) (\(percent)%)  \(Format.bytes(UInt64(rate)))/s"
            + "  ETA \(Format.duration(eta))  files \(filesDone.load(ordering: .relaxed))/\(totalFiles)"
        FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[2K\(line)" : "\(line)\n").utf8))
    }

    /// Erases the status line; call with `stopped`'s lock held and its value.
    private func clearLine(stopped: Bool) {
        if !stopped && enabled && interactive && running.load(ordering: .relaxed) {
            FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
        }
    }

    /// Runs `body` (which prints a line) with the status line cleared, so the two do not mix.
    public func pauseWhile(_ body: () -> Void) {
        stopped.withLock { s in
            clearLine(stopped: s)
            body()
        }
    }

    /// Stops redrawing and clears the line; off a terminal, writes one last
    /// plain line, so a log always ends with the final figures.
    public func finish() {
        stopped.withLock { s in
            if !s && enabled && !interactive && running.load(ordering: .relaxed) { draw() }
            clearLine(stopped: s)
            s = true
        }
    }
}

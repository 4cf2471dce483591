import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let receivedSignal = Atomic<Int32>(0)

/// SIGINT/SIGTERM turned into a flag that long loops poll, so that they can
/// remove temporary files before the process exits.
public enum Interrupt {
    /// Installs handlers for SIGINT and SIGTERM that only record the signal.
    public static func install() {
        // A parent may hand down a mask that blocks them (seen under the test runner),
        // which would make the tool ignore Ctrl-C and SIGTERM.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &set, nil)
        _ = Glibc.signal(SIGINT) { receivedSignal.store($0, ordering: .relaxed) }
        _ = Glibc.signal(SIGTERM) { receivedSignal.store($0, ordering: .relaxed) }
    }

    /// The signal received, or nil.
    public static var signal: Int32? {
        let value = receivedSignal.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    /// Throws ``Interrupted`` once a signal has arrived.
    public static func check() throws {
        if let signal { throw Interrupted(signal: signal) }
    }

    /// The conventional exit status for death by `signal`: 128 + its number.
    public static func exitStatus(for signal: Int32) -> Int32 { 128 + signal }
}

/// Thrown by ``Interrupt/check()``.
public struct Interrupted: Error, CustomStringConvertible {
    public let signal: Int32
    public var description: String { signal == SIGINT ? "interrupted" : "terminated by signal \(signal)" }
}

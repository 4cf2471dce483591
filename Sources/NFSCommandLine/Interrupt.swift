import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let receivedSignal = Atomic<Int32>(0)

/// SIGINT/SIGTERM turned into a flag that long loops poll, so that they can
/// remove temporary files before the process exits.
///
/// As swift-service-lifecycle does, the signals are blocked in every thread and
/// one dedicated thread takes them with `sigwait`. A handler interrupting a
/// thread inside libnfs's `poll()` would make libnfs see EINTR, which it reports
/// as a broken socket, so Ctrl-C could surface as a spurious I/O error on a file
/// that was fine. A handler is installed too, for the one thread that does not
/// block them: an async `main`'s main thread, parked by libdispatch in
/// `sigsuspend` with every signal open, which runs no libnfs code.
///
/// The first signal asks the copy to stop and clean up; a second one ends the
/// process at once with the same status. Every file is still written under a
/// temporary name until its final rename, so even then no partial file is
/// left under a final name (a `.nfs-cp-*.part` file may remain).
public enum Interrupt {
    private static let installed = Atomic<Bool>(false)

    /// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread
    /// created after it, and starts the thread that receives them. Call it first
    /// thing in `main`, before any other thread exists.
    public static func install() {
        guard !installed.exchange(true, ordering: .relaxed) else { return }
        var set = signalSet()
        // Also undoes a parent's mask that ignored them (seen under the test runner):
        // blocked signals stay pending until the receiving thread takes them.
        pthread_sigmask(SIG_BLOCK, &set, nil)
        // An async `main` leaves the main thread in libdispatch's `sigsuspend` with every
        // signal unblocked, so a signal can land there instead of in `sigwait`: the handler
        // records it the same way (it only runs on a thread that does not block the signals).
        var action = sigaction()
        #if canImport(Glibc)
        action.__sigaction_handler.sa_handler = { signal in Interrupt.received(signal) }
        #else
        action.__sigaction_u.__sa_handler = { signal in Interrupt.received(signal) }
        #endif
        action.sa_flags = SA_RESTART
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
        let receiver = Thread {
            var set = signalSet()
            while true {
                var signal: Int32 = 0
                guard sigwait(&set, &signal) == 0 else { continue }
                received(signal)
            }
        }
        receiver.name = "signals"
        receiver.start()
    }

    /// Records the first signal; the second one ends the process (the user insists:
    /// temporary names protect the final ones). Async-signal-safe: atomics and `_exit`.
    fileprivate static func received(_ signal: Int32) {
        if receivedSignal.compareExchange(expected: 0, desired: signal, ordering: .relaxed).exchanged { return }
        _exit(exitStatus(for: receivedSignal.load(ordering: .relaxed)))
    }

    /// Blocks SIGINT and SIGTERM in the calling thread; for a thread that calls
    /// into libnfs and may have been created before ``install()``.
    public static func blockInCurrentThread() {
        var set = signalSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    private static func signalSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        return set
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

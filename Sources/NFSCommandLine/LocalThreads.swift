import Foundation
import Synchronization

/// Threads of their own for the local side's blocking system calls.
///
/// A copy runs as tasks on Swift's cooperative pool, which has one thread per
/// core: an `open`, `read` or `rename` that waits on a slow disk there would
/// stop every other file in flight. So the local file system hands each call to
/// one of these threads and suspends until it is done (as NIO's `NIOThreadPool`
/// does). The threads start when first needed and live as long as the process.
final class LocalThreads: Sendable {
    /// Enough for the local calls of several files to wait on the disk at once;
    /// each call is short, so a few threads serve many files in flight.
    static let shared = LocalThreads(limit: 4)

    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var idle = 0
        var started = 0
    }

    private let limit: Int
    private let state = Mutex(State())
    private let wakeUp = NSCondition()

    init(limit: Int) { self.limit = limit }

    /// Runs `body` on one of the threads; the task suspends, not its thread, meanwhile.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit { continuation.resume(with: Result { try body() }) }
        }
    }

    private func submit(_ job: @escaping @Sendable () -> Void) {
        wakeUp.lock()
        let startOne = state.withLock { s -> Bool in
            s.jobs.append(job)
            guard s.idle == 0, s.started < limit else { return false }
            s.started += 1
            return true
        }
        wakeUp.signal()
        wakeUp.unlock()
        if startOne {
            let thread = Thread { [self] in work() }
            thread.name = "nfs-cp local I/O"
            thread.start()
        }
    }

    private func work() {
        // These threads run only system calls; signals are for the thread that waits for them.
        Interrupt.blockInCurrentThread()
        while true {
            wakeUp.lock()
            var job = state.withLock { s in s.jobs.isEmpty ? nil : s.jobs.removeFirst() }
            while job == nil {
                state.withLock { $0.idle += 1 }
                wakeUp.wait()
                job = state.withLock { s in
                    s.idle -= 1
                    return s.jobs.isEmpty ? nil : s.jobs.removeFirst()
                }
            }
            wakeUp.unlock()
            job?()
        }
    }
}

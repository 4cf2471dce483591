import Synchronization

/// A lock that both threads and tasks can hold across waits: a blocking
/// ``lock()`` for the synchronous API and a suspending one for the async API,
/// served first come, first served. An open file's position and buffers stay
/// consistent because each operation on it holds its gate from start to end,
/// RPCs included, while other files and calls go on.
final class Gate: Sendable {
    private enum Waiter {
        case thread(Grant)
        case task(CheckedContinuation<Void, Never>)
    }

    /// A blocked thread's wait; `granted` is guarded by `signal`.
    private final class Grant: @unchecked Sendable {
        let signal = ConditionLock()
        var granted = false
    }

    /// 0: free; 1: held; 2: held, and the holder must look for waiters when it unlocks.
    /// An uncontended lock and unlock are one atomic operation each; the
    /// waiters' lock is taken only when the gate is contended.
    private let word = Atomic<Int>(0)
    /// Changed, and `word` set to 2 or handed on, only under this lock.
    private let waiters = Locked<[Waiter]>([])

    /// Blocks the calling thread until the gate is its own.
    func lock() {
        if word.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { return }
        let grant: Grant? = waiters.withLock { waiters in
            if word.exchange(2, ordering: .acquiringAndReleasing) == 0 { return nil }
            let grant = Grant()
            waiters.append(.thread(grant))
            return grant
        }
        guard let grant else { return }
        grant.signal.withLock { while !grant.granted { grant.signal.wait() } }
    }

    /// Suspends the calling task until the gate is its own (cancellation does not cut the wait short).
    func lock() async {
        if word.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = waiters.withLock { waiters in
                if word.exchange(2, ordering: .acquiringAndReleasing) == 0 { return true }
                waiters.append(.task(continuation))
                return false
            }
            if granted { continuation.resume() }
        }
    }

    /// Hands the gate to the longest waiter, or frees it.
    func unlock() {
        if word.compareExchange(expected: 1, desired: 0, ordering: .releasing).exchanged { return }
        let next: Waiter? = waiters.withLock { waiters in
            guard !waiters.isEmpty else {
                word.store(0, ordering: .releasing)
                return nil
            }
            // The gate stays held (word 2): it passes to the waiter.
            return waiters.removeFirst()
        }
        switch next {
        case .thread(let grant)?:
            grant.signal.withLock { grant.granted = true; grant.signal.broadcast() }
        case .task(let continuation)?:
            continuation.resume()
        case nil:
            break
        }
    }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    func withLock<R>(_ body: () async throws -> R) async rethrows -> R {
        await lock()
        defer { unlock() }
        return try await body()
    }
}

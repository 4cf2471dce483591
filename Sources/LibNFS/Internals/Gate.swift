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

    private struct State: @unchecked Sendable {
        var held = false
        var waiters: [Waiter] = []
    }

    private let state = Locked(State())

    /// Blocks the calling thread until the gate is its own.
    func lock() {
        let grant: Grant? = state.withLock { state in
            if !state.held { state.held = true; return nil }
            let grant = Grant()
            state.waiters.append(.thread(grant))
            return grant
        }
        guard let grant else { return }
        grant.signal.withLock { while !grant.granted { grant.signal.wait() } }
    }

    /// Suspends the calling task until the gate is its own (cancellation does not cut the wait short).
    func lock() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state in
                if !state.held { state.held = true; return true }
                state.waiters.append(.task(continuation))
                return false
            }
            if granted { continuation.resume() }
        }
    }

    /// Hands the gate to the longest waiter, or frees it.
    func unlock() {
        let next: Waiter? = state.withLock { state in
            if state.waiters.isEmpty { state.held = false; return nil }
            return state.waiters.removeFirst()
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

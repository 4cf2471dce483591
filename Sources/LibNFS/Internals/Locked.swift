#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a `pthread_mutex_t`.
///
/// Why not `Synchronization.Mutex`: on Linux it locks with raw futex calls
/// that ThreadSanitizer cannot see, so `swift test --sanitize=thread` reports
/// every access under it as a race (checked with Swift 6.3.1: a lone
/// `Mutex<[Int: Int]>` incremented from four threads is flagged). A pthread
/// mutex is intercepted by TSan, so the concurrency suite checks for real.
///
/// The mutex is of the error-checking kind, and every pthread result is
/// checked: a re-entrant `withLock` (a libnfs callback or a `deinit` calling
/// back into its owner) stops the process with a message naming the mistake,
/// where a plain mutex would deadlock without a word.
final class Locked<Value> {
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        var attributes = pthread_mutexattr_t()
        Self.check(pthread_mutexattr_init(&attributes), "pthread_mutexattr_init")
        Self.check(pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ERRORCHECK)), "pthread_mutexattr_settype")
        Self.check(pthread_mutex_init(mutex, &attributes), "pthread_mutex_init")
        pthread_mutexattr_destroy(&attributes)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        let rc = pthread_mutex_lock(mutex)
        if rc == EDEADLK {
            preconditionFailure("Locked.withLock called again on the thread that holds the lock (a re-entrant call would deadlock)")
        }
        Self.check(rc, "pthread_mutex_lock")
        defer { Self.check(pthread_mutex_unlock(mutex), "pthread_mutex_unlock") }
        return try body(&value)
    }

    /// A failing pthread call leaves the lock in an unknown state: nothing safe can follow.
    private static func check(_ rc: Int32, _ function: StaticString) {
        precondition(rc == 0, "\(function) failed with error \(rc)")
    }
}

/// Sendable only when what it guards is, as swift-nio's `NIOLockedValueBox`.
///
/// Invariant: `value` is read and written only inside `withLock`, between
/// `pthread_mutex_lock` and `pthread_mutex_unlock` on `mutex`.
extension Locked: @unchecked Sendable where Value: Sendable {}

/// A pthread mutex with a condition variable, for a thread that must block
/// until another thread (the engine's service thread) hands it a result.
/// pthread for the same reason as ``Locked``: ThreadSanitizer sees it.
final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
        precondition(pthread_cond_init(condition, nil) == 0, "pthread_cond_init failed")
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        precondition(pthread_mutex_lock(mutex) == 0, "pthread_mutex_lock failed")
        defer { precondition(pthread_mutex_unlock(mutex) == 0, "pthread_mutex_unlock failed") }
        return try body()
    }

    /// Waits for ``broadcast()``; call only inside ``withLock(_:)``, in a loop over the awaited condition.
    func wait() {
        precondition(pthread_cond_wait(condition, mutex) == 0, "pthread_cond_wait failed")
    }

    func broadcast() {
        pthread_cond_broadcast(condition)
    }
}

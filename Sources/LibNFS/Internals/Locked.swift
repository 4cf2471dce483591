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
/// `@unchecked Sendable` invariant: `value` is read and written only inside
/// `withLock`, between `pthread_mutex_lock` and `pthread_mutex_unlock` on `mutex`.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

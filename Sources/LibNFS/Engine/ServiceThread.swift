import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The engine's thread: a plain pthread, since it blocks in `poll` for as long
/// as the context lives and must never take a thread of Swift's cooperative pool.
final class ServiceThread: @unchecked Sendable {
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Guarded by `joined`'s lock.
    private var thread: pthread_t
    private let joined = Locked(false)

    init(_ body: @escaping () -> Void) throws {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        #if canImport(Glibc)
        var thread = pthread_t()
        #else
        var thread: pthread_t?
        #endif
        let rc = pthread_create(&thread, nil, { context in
            Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw NFSError(code: Errno(rawValue: rc), operation: "mount", detail: "cannot start the engine's service thread")
        }
        #if canImport(Glibc)
        self.thread = thread
        #else
        self.thread = thread!
        #endif
    }

    /// Runs `body` on a thread of its own that nobody joins (a blocking mount for the async API).
    static func detached(_ body: @escaping () -> Void) throws {
        let thread = try ServiceThread(body)
        thread.joined.withLock { joined in
            joined = true
            pthread_detach(thread.thread)
        }
    }

    /// Waits for the thread to end; from the thread itself (its last owner
    /// released there), lets it end on its own instead.
    func join() {
        joined.withLock { joined in
            guard !joined else { return }
            joined = true
            if pthread_equal(pthread_self(), thread) != 0 {
                pthread_detach(thread)
            } else {
                pthread_join(thread, nil)
            }
        }
    }
}

/// The descriptor pair a submitter writes to wake the service thread from `poll`.
final class WakePipe: Sendable {
    let readDescriptor: Int32
    private let writeDescriptor: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw NFSError(code: Errno(rawValue: errno), operation: "mount", detail: "cannot create the engine's wake-up pipe")
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        readDescriptor = fds[0]
        writeDescriptor = fds[1]
    }

    deinit {
        _ = Platform.closeDescriptor(readDescriptor)
        _ = Platform.closeDescriptor(writeDescriptor)
    }

    func signal() {
        var byte: UInt8 = 1
        _ = write(writeDescriptor, &byte, 1)
    }

    func drain() {
        var bytes = (UInt64(0), UInt64(0))
        while withUnsafeMutableBytes(of: &bytes, { read(readDescriptor, $0.baseAddress, $0.count) }) > 0 {}
    }
}

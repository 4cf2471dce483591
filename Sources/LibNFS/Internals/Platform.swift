#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The C library calls whose module name differs between Linux (Glibc) and
/// macOS (Darwin), in one place, as swift-system keeps its own. Linux is
/// tested; the Darwin branches are written for macOS but not run here.
enum Platform {
    /// The inode number of an open descriptor (for a socket: which socket it is).
    static func inode(ofDescriptor fd: Int32) -> UInt64? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }

    /// Waits up to `milliseconds` (-1: without end) for the wake-up descriptor
    /// or `events` on `descriptor` (each skipped when negative); returns the
    /// descriptor's events, -1 when poll itself failed (libnfs's convention).
    /// With `watchingHangup`, also asks for ``peerClosedEvent`` (the peer shut its side).
    static func poll(wake: Int32, descriptor: Int32, events: Int32, milliseconds: Int32,
                     watchingHangup: Bool = false) -> Int32 {
        let asked = watchingHangup ? events | peerClosedEvent : events
        var fds = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: descriptor, events: Int16(truncatingIfNeeded: asked), revents: 0)]
        let count = descriptor >= 0 ? 2 : 1
        let rc = fds.withUnsafeMutableBufferPointer { buffer in
            #if canImport(Glibc)
            Glibc.poll(buffer.baseAddress, nfds_t(count), milliseconds)
            #else
            Darwin.poll(buffer.baseAddress, nfds_t(count), milliseconds)
            #endif
        }
        if rc < 0 { return errno == EINTR ? 0 : -1 }
        return Int32(fds[1].revents)
    }

    /// Poll's report that the peer shut its side of the connection (Linux's POLLRDHUP; none elsewhere).
    #if os(Linux)
    static let peerClosedEvent: Int32 = 0x2000  // POLLRDHUP: Glibc's module leaves it out (it needs _GNU_SOURCE)
    #else
    static let peerClosedEvent: Int32 = 0
    #endif
    /// The poll results that mean the peer closed or refused the connection.
    static let hangupEvents = Int32(POLLHUP) | Int32(POLLERR) | peerClosedEvent

    /// Turns off Nagle's algorithm on a connection, so a small RPC leaves at
    /// once even while earlier ones are unanswered.
    static func setNoDelay(_ fd: Int32) {
        var on: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    /// True once a TCP socket's connection is established (its peer has an address).
    static func isConnected(_ fd: Int32) -> Bool {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutablePointer(to: &address) { storage in
            storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) == 0 }
        }
    }

    /// Makes sends on `fd` block until the kernel took every byte, or `limit`
    /// passed (`SO_SNDTIMEO`); receives that pass `MSG_DONTWAIT` are unaffected.
    static func makeSendsWhole(_ fd: Int32, within limit: Duration) {
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        let (seconds, attoseconds) = limit.components
        var bound = timeval(tv_sec: Int(max(seconds, 0)), tv_usec: Int(attoseconds / 1_000_000_000_000))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bound, socklen_t(MemoryLayout<timeval>.size))
    }

    static func closeDescriptor(_ fd: Int32) -> Int32 {
        #if canImport(Glibc)
        Glibc.close(fd)
        #else
        Darwin.close(fd)
        #endif
    }
}

/// Keeps a broken connection from killing the process.
///
/// libnfs 4.0.0 sends with `MSG_NOSIGNAL`, but 5.0.3, 6.0.2 and 7.0.0 send
/// with `writev`, which has no such flag: a write to a connection the server
/// (or the network) has closed raises SIGPIPE, whose default action ends the
/// process. SIGPIPE from a write is sent to the writing thread,
/// so blocking it on that thread for the length of a libnfs call, then taking
/// any SIGPIPE that call raised, leaves the process's signal handling as the
/// application set it; libnfs then sees EPIPE and reports the lost connection.
enum BrokenPipeShield {
    static func run<T>(_ body: () throws -> T) rethrows -> T {
        var pipe = sigset_t()
        var previous = sigset_t()
        sigemptyset(&pipe)
        sigaddset(&pipe, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipe, &previous)
        defer {
            if sigismember(&previous, SIGPIPE) == 0 {
                var pending = sigset_t()
                if sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1 {
                    var signal: Int32 = 0
                    sigwait(&pipe, &signal)
                }
                pthread_sigmask(SIG_SETMASK, &previous, nil)
            }
        }
        return try body()
    }
}

extension Duration {
    /// Whole milliseconds, as `poll` takes them: never below 0, at most `Int32.max`.
    var pollMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? 0 : .max }
        return Int32(clamping: max(0, whole + attoseconds / 1_000_000_000_000_000))
    }
}

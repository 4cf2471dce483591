import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// A plain TCP connect, used only to explain a failed mount.
enum Reachability {
    /// Returns the errno of a failed connect to `host:port`, or nil when it connects (or cannot be tried).
    ///
    /// Every address the name resolves to is tried in turn, as a mount would;
    /// the first that connects wins, else the last failure is reported. The
    /// whole check, name resolution included, ends within `timeoutMilliseconds`.
    static func connectError(host: String, port: UInt16, timeoutMilliseconds: Int32) -> Errno? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeoutMilliseconds))
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        guard let addresses = resolve(bare, port: port, within: .milliseconds(Int64(timeoutMilliseconds))) else {
            return nil
        }
        var lastError: Errno? = nil
        for address in addresses {
            let left = deadline - .now
            guard left > .zero else { return lastError ?? .timedOut }
            guard let error = connectError(address, timeoutMilliseconds: max(left.pollMilliseconds, 1)) else { return nil }
            lastError = error
        }
        return lastError
    }

    /// One resolved socket address.
    private struct Address: Sendable {
        var family: Int32, type: Int32, proto: Int32
        var bytes: [UInt8]
    }

    /// Resolves `host` within `limit`, or returns nil. `getaddrinfo` cannot be
    /// cancelled, so it runs on a Dispatch worker: when the limit passes first,
    /// the worker finishes (and frees its result) on its own and is ignored.
    private static func resolve(_ host: String, port: UInt16, within limit: Duration) -> [Address]? {
        let box = ResolveBox()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            #else
            hints.ai_socktype = SOCK_STREAM
            #endif
            var list: UnsafeMutablePointer<addrinfo>?
            var result: [Address] = []
            if getaddrinfo(host, String(port), &hints, &list) == 0 {
                var next = list
                while let entry = next {
                    let e = entry.pointee
                    if let addr = e.ai_addr {
                        let bytes = [UInt8](UnsafeRawBufferPointer(start: addr, count: Int(e.ai_addrlen)))
                        result.append(Address(family: e.ai_family, type: e.ai_socktype, proto: e.ai_protocol, bytes: bytes))
                    }
                    next = e.ai_next
                }
                freeaddrinfo(list)
            }
            box.set(result)
            done.signal()
        }
        let nanoseconds = limit.components.seconds * 1_000_000_000 + limit.components.attoseconds / 1_000_000_000
        guard done.wait(timeout: .now() + .nanoseconds(Int(clamping: nanoseconds))) == .success else { return nil }
        let addresses = box.get()
        return addresses.isEmpty ? nil : addresses
    }

    private final class ResolveBox: Sendable {
        private let value = Locked<[Address]>([])
        func set(_ addresses: [Address]) { value.withLock { $0 = addresses } }
        func get() -> [Address] { value.withLock { $0 } }
    }

    private static func connectError(_ address: Address, timeoutMilliseconds: Int32) -> Errno? {
        let fd = socket(address.family, address.type, address.proto)
        guard fd >= 0 else { return Errno(rawValue: errno) }
        defer { _ = Platform.closeDescriptor(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        let rc = address.bytes.withUnsafeBytes {
            connect(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
        if rc == 0 { return nil }
        if errno != EINPROGRESS { return Errno(rawValue: errno) }
        var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeoutMilliseconds))
        while true {
            let left = deadline - .now
            let ready = poll(&pfd, 1, left.pollMilliseconds)
            if ready > 0 { break }
            if ready == 0 { return .timedOut }
            // A failed poll says nothing about the server: retry on EINTR, else report it.
            if errno != EINTR { return Errno(rawValue: errno) }
        }
        var soError: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len) == 0 else { return Errno(rawValue: errno) }
        return soError == 0 ? nil : Errno(rawValue: soError)
    }
}

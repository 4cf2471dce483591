import Foundation
import LibNFS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A TCP socket on 127.0.0.1 that accepts connections (the kernel completes
/// the handshake) but never reads or answers: a server that hangs.
public final class SilentListener: Sendable {
    public let port: UInt16
    private let fd: Int32

    public init() throws {
        (fd, port) = try listenLoopback()
    }

    deinit { close(fd) }
}

/// A loopback port with nothing listening on it (bound, then closed).
public func closedLoopbackPort() throws -> UInt16 {
    let (fd, port) = try listenLoopback()
    close(fd)
    return port
}

public struct SocketError: Error { public let what: String; public let code: Int32 }

/// A listening socket on a free port of 127.0.0.1, or of ::1 with `ipv6`.
public func listenLoopback(ipv6: Bool = false) throws -> (Int32, UInt16) {
    let fd = socket(ipv6 ? AF_INET6 : AF_INET, Platform.streamSocket, 0)
    guard fd >= 0 else { throw SocketError(what: "socket", code: errno) }
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    // sockaddr_in6 is large enough for either family; the port sits at the same offset in both.
    var addr = sockaddr_in6()
    let length: Int
    if ipv6 {
        addr.sin6_family = sa_family_t(AF_INET6)
        addr.sin6_addr = in6addr_loopback
        length = MemoryLayout<sockaddr_in6>.size
    } else {
        withUnsafeMutableBytes(of: &addr) { raw in
            let v4 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
            v4.pointee.sin_family = sa_family_t(AF_INET)
            v4.pointee.sin_addr.s_addr = inet_addr("127.0.0.1")
        }
        length = MemoryLayout<sockaddr_in>.size
    }
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) }
    }
    guard bound == 0, listen(fd, 64) == 0 else { close(fd); throw SocketError(what: "bind/listen", code: errno) }
    var len = socklen_t(MemoryLayout<sockaddr_in6>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return (fd, UInt16(bigEndian: addr.sin6_port))
}

/// A loopback TCP proxy in front of one port of the test server that can be
/// told to stop forwarding: connections stay open but nothing comes back,
/// like a server that stops answering in the middle of a transfer.
public final class StallingProxy: Sendable {
    public let port: UInt16
    private let listener: Int32
    /// The listener and the connections' sockets: each shut down and closed under one lock.
    private let sockets = SocketRegistry()
    private let state = Mutex<(stalled: Bool, closed: Bool, budget: Int?, fromClients: Int, cutBudget: Int?,
                               connections: Int, stalledBelow: Int)>((false, false, nil, 0, nil, 0, 0))

    /// With `stallAfter`, the connections open when that many bytes have come back
    /// from the server go silent by themselves (for stalling a separate process
    /// mid-transfer); connections made later still work, as a second client's would.
    /// With `corruptClientByte`, the byte at that offset of the clients' stream
    /// (counted over all connections) is inverted on its way to the server:
    /// deep inside a large WRITE, the server stores a wrong byte and says OK.
    private let corruptOffset: Int?

    /// With `replyDelay`, each chunk from the server is held that long before it
    /// is passed on (one at a time: a slow server, or a long round trip, for a
    /// client that waits for each reply before its next call, as a mount does).
    private let replyDelay: Duration?

    /// With `cutAfter`, once that many bytes have gone through in either direction
    /// (counted over all connections), every connection is cut and the port
    /// closed, as a server that vanishes or a network that fails for good.
    /// With `ipv6`, the proxy listens on ::1 (and still forwards to 127.0.0.1).
    public init(forwardingTo targetPort: UInt16, stallAfter budget: Int? = nil, corruptClientByte: Int? = nil,
                cutAfter cutBudget: Int? = nil, replyDelay: Duration? = nil, ipv6: Bool = false) throws {
        corruptOffset = corruptClientByte
        self.replyDelay = replyDelay
        (listener, port) = try listenLoopback(ipv6: ipv6)
        sockets.add(listener)
        state.withLock { $0.budget = budget; $0.cutBudget = cutBudget }
        Thread.detachNewThread { [self] in
            // Descriptors are closed only by the threads that use them, once they are done:
            // a number closed under a running thread can be reused by another test's socket.
            defer { sockets.close(listener) }
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                guard let upstream = try? connectLoopback(targetPort) else { close(client); continue }
                let connection = state.withLock { s -> Int? in
                    guard !s.closed else { return nil }
                    s.connections += 1
                    return s.connections
                }
                guard let connection else { close(client); close(upstream); return }
                let pair = SocketPair(client, upstream, registry: sockets)
                pump(from: client, to: upstream, counted: false, pair: pair, connection: connection)
                pump(from: upstream, to: client, counted: true, pair: pair, connection: connection)
            }
        }
    }

    /// Bytes the clients have sent through the proxy so far (an outside view of the requests made).
    public var bytesFromClients: Int { state.withLock { $0.fromClients } }

    /// From now on, bytes in both directions are read and dropped.
    public func stall() { state.withLock { $0.stalled = true } }

    private func pump(from source: Int32, to destination: Int32, counted: Bool, pair: SocketPair, connection: Int) {
        Thread.detachNewThread { [self] in
            defer { pair.oneDirectionDone() }
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
                if n <= 0 { Platform.shutdown(destination, Platform.shutdownWrite); return }
                let (stalled, cut) = state.withLock { s -> (Bool, Bool) in
                    var cut = false
                    if let left = s.cutBudget {
                        s.cutBudget = left - n
                        if left - n < 0 { s.cutBudget = nil; cut = true }
                    }
                    if !counted {
                        if let corrupt = corruptOffset, corrupt >= s.fromClients, corrupt < s.fromClients + n {
                            buffer[corrupt - s.fromClients] ^= 0xFF
                        }
                        s.fromClients += n
                    }
                    if counted, let budget = s.budget {
                        s.budget = budget - n
                        if budget - n < 0 { s.budget = nil; s.stalledBelow = s.connections + 1 }
                    }
                    return (s.stalled || connection < s.stalledBelow, cut)
                }
                if cut { shutdownAll(); return }
                if stalled { continue }
                if counted, let replyDelay {
                    let (seconds, attoseconds) = replyDelay.components
                    Thread.sleep(forTimeInterval: Double(seconds) + Double(attoseconds) / 1e18)
                }
                var sent = 0
                while sent < n {
                    let m = buffer.withUnsafeBytes { Platform.sendWithoutSignal(destination, $0.baseAddress! + sent, n - sent) }
                    if m <= 0 { return }
                    sent += m
                }
            }
        }
    }

    /// Closes the listener and every proxied connection, which ends the pump threads.
    public func shutdownAll() {
        state.withLock { $0.closed = true }
        // Wakes the threads blocked on them (the listener's too); each closes its own descriptors
        // on the way out. Through the registry: a second call (a cut, then the test's own) must not
        // reach a closed listener's number, which another test's NFS connection may have reused.
        sockets.shutdownAll()
    }
}

/// A proxy's open sockets (its listener and its connections'). Closing one and shutting all down happen
/// under one lock, so a shutdown never reaches a number already closed (and
/// perhaps reused by another test's socket).
final class SocketRegistry: Sendable {
    private let open = Mutex<Set<Int32>>([])
    func add(_ fds: Int32...) { open.withLock { $0.formUnion(fds) } }
    func close(_ fds: Int32...) {
        open.withLock { set in
            for fd in fds where set.remove(fd) != nil { _ = Platform.close(fd) }
        }
    }
    func shutdownAll() {
        open.withLock { set in for fd in set { Platform.shutdown(fd, Platform.shutdownBoth) } }
    }
}

/// The two sockets of one proxied connection, closed once both directions have stopped.
final class SocketPair: Sendable {
    private let fds: (Int32, Int32)
    private let registry: SocketRegistry
    private let running = Atomic<Int>(2)
    init(_ a: Int32, _ b: Int32, registry: SocketRegistry) {
        fds = (a, b)
        self.registry = registry
        registry.add(a, b)
    }
    func oneDirectionDone() {
        if running.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            registry.close(fds.0, fds.1)
        }
    }
}

public func connectLoopback(_ port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Platform.streamSocket, 0)
    guard fd >= 0 else { throw SocketError(what: "socket", code: errno) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { close(fd); throw SocketError(what: "connect", code: errno) }
    return fd
}

/// The test server reached through two ``StallingProxy``s (NFS and MOUNT ports).
public struct ProxiedServer: Sendable {
    public let nfs: StallingProxy
    public let mount: StallingProxy
    /// `directory` with its ports pointing at the proxies, and auto-reconnect off.
    public let url: NFSURL

    public init(_ server: TestServer, directory: NFSURL, stallAfter budget: Int? = nil, corruptClientByte: Int? = nil,
                cutAfter cutBudget: Int? = nil, replyDelay: Duration? = nil, autoreconnect: Bool = false,
                ipv6: Bool = false) throws {
        guard let nfsPort = server.url.argument("nfsport").flatMap(UInt16.init),
              let mountPort = server.url.argument("mountport").flatMap(UInt16.init) else {
            throw SocketError(what: "the server URL names no ports: \(server.url)", code: 0)
        }
        nfs = try StallingProxy(forwardingTo: nfsPort, stallAfter: budget, corruptClientByte: corruptClientByte,
                                cutAfter: cutBudget, replyDelay: replyDelay, ipv6: ipv6)
        mount = try StallingProxy(forwardingTo: mountPort, replyDelay: replyDelay, ipv6: ipv6)
        var url = directory
        if ipv6 { url.server = "[::1]" }
        let version = server.url.argument("version") ?? "3"
        url.query = "nfsport=\(nfs.port)&mountport=\(mount.port)&version=\(version)" + (autoreconnect ? "" : "&autoreconnect=0")
        self.url = url
    }

    public func shutdown() {
        nfs.shutdownAll()
        mount.shutdownAll()
    }
}

/// How long `body` took, with its result.
public func timed<T>(_ body: () throws -> T) rethrows -> (T, Duration) {
    let start = ContinuousClock.now
    let result = try body()
    return (result, ContinuousClock.now - start)
}

import Foundation
import LibNFS
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A loopback proxy in front of the test server's NFS port that lets every
/// NFSv3 WRITE through to the server but changes the reply's `count` to 0:
/// the server says it accepted none of the bytes. No server does this by
/// itself; a client must still treat it as the error it is, not loop or
/// report success. Only WRITE replies change; everything else passes as is.
/// With `zeroingWrites` false nothing changes: the proxy only counts the
/// NFSv3 calls that pass, by procedure.
public final class ZeroWriteProxy: Sendable {
    public let port: UInt16
    private let listener: Int32
    private let sockets = SocketRegistry()
    private let zeroingWrites: Bool
    /// WRITE replies rewritten so far.
    public var rewritten: Int { count.load(ordering: .relaxed) }
    private let count = Atomic<Int>(0)
    private let procedures = Mutex<[UInt32: Int]>([:])

    /// NFSv3 calls of `procedure` (RFC 1813's numbers: 7 WRITE, 21 COMMIT) passed so far, on every connection.
    public func calls(_ procedure: UInt32) -> Int { procedures.withLock { $0[procedure] ?? 0 } }

    public init(forwardingTo targetPort: UInt16, zeroingWrites: Bool = true) throws {
        self.zeroingWrites = zeroingWrites
        (listener, port) = try listenLoopback()
        sockets.add(listener)
        Thread.detachNewThread { [self] in
            defer { sockets.close(listener) }   // only the threads using a descriptor close it
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                guard let upstream = try? connectLoopback(targetPort) else { close(client); continue }
                let writes = WriteCalls()
                let pair = SocketPair(client, upstream, registry: sockets)
                Thread.detachNewThread { [self] in
                    relayCalls(from: client, to: upstream, writes: writes)
                    pair.oneDirectionDone()
                }
                Thread.detachNewThread { [self] in
                    relayReplies(from: upstream, to: client, writes: writes)
                    pair.oneDirectionDone()
                }
            }
        }
    }

    /// The xids of one connection's WRITE calls whose replies are still to come.
    private final class WriteCalls: Sendable {
        let xids = Mutex<Set<UInt32>>([])
    }

    /// A proxy in front of `server`'s NFS port, and the server's URL with that port.
    public static func inFront(of server: TestServer, zeroingWrites: Bool = true) throws -> (proxy: ZeroWriteProxy, url: NFSURL) {
        guard let nfsPort = server.url.argument("nfsport").flatMap(UInt16.init) else {
            throw SocketError(what: "the server URL names no NFS port: \(server.url)", code: 0)
        }
        let proxy = try ZeroWriteProxy(forwardingTo: nfsPort, zeroingWrites: zeroingWrites)
        var url = server.url
        url.query = url.query.replacingOccurrences(of: "nfsport=\(nfsPort)", with: "nfsport=\(proxy.port)")
        return (proxy, url)
    }

    public func shutdown() {
        sockets.shutdownAll()   // the listener's too
    }

    /// Reads whole RPC records (record marking, RFC 5531 §11) from `source`.
    private func records(from source: Int32, _ body: (inout [UInt8]) -> Bool) {
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            pending += buffer[..<n]
            while pending.count >= 4 {
                let mark = UInt32(pending[0]) << 24 | UInt32(pending[1]) << 16 | UInt32(pending[2]) << 8 | UInt32(pending[3])
                let length = Int(mark & 0x7FFF_FFFF)
                guard pending.count >= 4 + length else { break }
                var record = Array(pending[..<(4 + length)])
                pending.removeFirst(4 + length)
                if !body(&record) { return }
            }
        }
    }

    private func send(_ bytes: [UInt8], to destination: Int32) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let m = bytes.withUnsafeBytes { Platform.sendWithoutSignal(destination, $0.baseAddress! + sent, bytes.count - sent) }
            if m <= 0 { return false }
            sent += m
        }
        return true
    }

    private static func word(_ bytes: [UInt8], _ at: Int) -> UInt32? {
        guard at + 4 <= bytes.count else { return nil }
        return UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }

    /// Calls pass unchanged; the xids of NFSv3 WRITEs (program 100003, version 3, procedure 7) are noted.
    private func relayCalls(from source: Int32, to destination: Int32, writes: WriteCalls) {
        records(from: source) { record in
            // mark, xid, CALL(0), rpcvers, prog, vers, proc
            if let xid = Self.word(record, 4), Self.word(record, 8) == 0, Self.word(record, 16) == 100_003,
               Self.word(record, 20) == 3, let procedure = Self.word(record, 24) {
                procedures.withLock { $0[procedure, default: 0] += 1 }
                if procedure == 7 && zeroingWrites { writes.xids.withLock { _ = $0.insert(xid) } }
            }
            return send(record, to: destination)
        }
        Platform.shutdown(destination, Platform.shutdownWrite)
    }

    /// Replies pass unchanged, but a successful WRITE3 reply's count becomes 0.
    private func relayReplies(from source: Int32, to destination: Int32, writes: WriteCalls) {
        records(from: source) { record in
            if let xid = Self.word(record, 4), writes.xids.withLock({ $0.remove(xid) }) != nil,
               Self.word(record, 8) == 1, Self.word(record, 12) == 0,
               let verifierLength = Self.word(record, 20) {
                // accept_stat, then WRITE3res: status, wcc_data (pre_op_attr, post_op_attr), count
                var at = 24 + (Int(verifierLength) + 3) & ~3
                if Self.word(record, at) == 0, Self.word(record, at + 4) == 0 {
                    at += 8
                    if Self.word(record, at) == 1 { at += 4 + 24 } else { at += 4 }
                    if Self.word(record, at) == 1 { at += 4 + 84 } else { at += 4 }
                    if at + 4 <= record.count {
                        record.replaceSubrange(at..<(at + 4), with: [0, 0, 0, 0])
                        count.add(1, ordering: .relaxed)
                    }
                }
            }
            return send(record, to: destination)
        }
        Platform.shutdown(destination, Platform.shutdownWrite)
    }
}

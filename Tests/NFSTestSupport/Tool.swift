import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The result of running a program.
public struct ToolResult: Sendable {
    public let status: Int32
    /// Standard output as bytes, for programs that print binary data (nfs-cat).
    public let output: Data
    public let stderr: String
    public var stdout: String { String(decoding: output, as: UTF8.self) }
}

/// Runs the package's built executables (they sit beside the test bundle).
public enum Tool {
    /// The directory SwiftPM built the tests and executables into.
    public static var binDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    public static func url(_ name: String) -> URL { binDirectory.appendingPathComponent(name) }

    /// Starts `name` with `arguments`; standard output and error are collected.
    public static func start(_ name: String, _ arguments: [String], environment: [String: String]? = nil) throws -> RunningTool {
        try RunningTool(executable: url(name), arguments: arguments, environment: environment)
    }

    /// Runs `name` to completion, killing it after `timeout` so a test can never hang on it.
    public static func run(_ name: String, _ arguments: [String], timeout: Duration = .seconds(120),
                           environment: [String: String]? = nil) throws -> ToolResult {
        try start(name, arguments, environment: environment).wait(timeout: timeout)
    }

    /// Runs a program of the system (`/usr/bin/nfs-cat`, …) the same bounded way.
    public static func run(program path: String, _ arguments: [String], timeout: Duration = .seconds(120),
                           environment: [String: String]? = nil) throws -> ToolResult {
        try RunningTool(executable: URL(fileURLWithPath: path), arguments: arguments, environment: environment)
            .wait(timeout: timeout)
    }
}

/// A started executable whose output is drained on background threads.
public final class RunningTool: @unchecked Sendable {
    // @unchecked: `process` is only touched from the creating test, the pipes' data only after the readers signal.
    public let process = Process()
    private let out = Pipe()
    private let err = Pipe()
    private var outData = Data()
    private var errData = Data()
    private let drained = DispatchGroup()

    init(executable: URL, arguments: [String], environment: [String: String]?) throws {
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        drained.enter()
        Thread.detachNewThread { [self] in outData = out.fileHandleForReading.readDataToEndOfFile(); drained.leave() }
        drained.enter()
        Thread.detachNewThread { [self] in errData = err.fileHandleForReading.readDataToEndOfFile(); drained.leave() }
    }

    public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    public func wait(timeout: Duration) throws -> ToolResult {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            _ = drained.wait(timeout: .now() + 5)
            throw ToolTimedOut(arguments: process.arguments ?? [])
        }
        process.waitUntilExit()
        _ = drained.wait(timeout: .now() + 10)
        return ToolResult(status: process.terminationStatus, output: outData,
                          stderr: String(decoding: errData, as: UTF8.self))
    }
}

public struct ToolTimedOut: Error, CustomStringConvertible {
    public let arguments: [String]
    public var description: String { "tool did not finish in time: \(arguments)" }
}

/// Runs a program with `posix_spawn` and `waitpid`, its output going to this
/// process's standard error. For scripts that leave a daemon behind (the
/// server restart), whose end Foundation's `Process` was seen not to notice.
public func spawnAndWait(_ path: String, _ arguments: [String]) throws -> Int32 {
    var pid: pid_t = 0
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    let rc = posix_spawn(&pid, path, nil, nil, argv, environ)
    guard rc == 0 else { throw SocketError(what: "posix_spawn \(path)", code: rc) }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
}

import ArgumentParser
import Foundation
import SystemPackage

/// What nfs-cp and nfs-check share around argument parsing and output.
public enum CommandLineTool {
    /// Parses and runs `Command`, exiting with `usageExitCode` for bad arguments
    /// (instead of ArgumentParser's 64) after printing the error and usage to standard error.
    public static func main<Command: ParsableCommand>(_ command: Command.Type, name: String, usageExitCode: Int32) -> Never {
        do {
            var parsed = try Command.parseAsRoot()
            try parsed.run()
            Foundation.exit(0)
        } catch {
            fail(Command.self, for: error, name: name, usageExitCode: usageExitCode)
        }
    }

    /// ``main(_:name:usageExitCode:)`` for a command that runs as a task.
    public static func main<Command: AsyncParsableCommand>(_ command: Command.Type, name: String,
                                                           usageExitCode: Int32) async -> Never {
        do {
            var parsed = try Command.parseAsRoot()
            if var asynchronous = parsed as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try parsed.run()
            }
            Foundation.exit(0)
        } catch {
            fail(Command.self, for: error, name: name, usageExitCode: usageExitCode)
        }
    }

    private static func fail<Command: ParsableCommand>(_ command: Command.Type, for error: any Error, name: String,
                                                       usageExitCode: Int32) -> Never {
        let code = Command.exitCode(for: error)
        if code == .success {
            print(Command.fullMessage(for: error))
            Foundation.exit(0)
        }
        if code == .validationFailure {
            printError("\(name): \(Command.fullMessage(for: error))")
            Foundation.exit(usageExitCode)
        }
        if let exitCode = error as? ExitCode { Foundation.exit(exitCode.rawValue) }
        printError("\(name): \(Command.fullMessage(for: error))")
        Foundation.exit(code.rawValue == 0 ? 1 : code.rawValue)
    }

    /// The bytes of the command-line arguments that ArgumentParser decoded as `decoded`, in order.
    ///
    /// ArgumentParser hands over `String`s, in which bytes that are not UTF-8
    /// are already replaced; file names need the original bytes. Each decoded
    /// value is matched to the next argument of the process that decodes to it.
    public static func argumentBytes(_ decoded: [String]) -> [[UInt8]] {
        let raw = (1..<Int(CommandLine.argc)).compactMap { CommandLine.unsafeArgv[$0].map { bytes(ofCString: $0) } }
        var next = 0
        return decoded.map { text in
            while next < raw.count {
                defer { next += 1 }
                if String(decoding: raw[next], as: UTF8.self) == text { return raw[next] }
            }
            return Array(text.utf8)
        }
    }

    /// ``argumentBytes(_:)`` as paths, for options that name files.
    public static func argumentPaths(_ decoded: [String]) -> [FilePath] {
        argumentBytes(decoded).map(FilePath.init(bytes:))
    }

    public static func printError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// One JSON document on standard output, keys sorted so that output is stable.
    public static func printJSON(_ value: some Encodable) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if let data = try? encoder.encode(value) {
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
    }
}

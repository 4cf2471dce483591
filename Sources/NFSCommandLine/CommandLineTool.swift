import ArgumentParser
import Foundation

/// What nfs-cp and nfs-check share around argument parsing and output.
public enum CommandLineTool {
    /// Parses and runs `Command`, exiting with `usageExitCode` for bad arguments
    /// (instead of ArgumentParser's 64) after printing the error and usage to standard error.
    public static func main<Command: ParsableCommand>(_ command: Command.Type, name: String, usageExitCode: Int32) -> Never {
        do {
            var parsed = try Command.parseAsRoot()
            try parsed.run()
            exit(0)
        } catch {
            let code = Command.exitCode(for: error)
            if code == .success {
                print(Command.fullMessage(for: error))
                exit(0)
            }
            if code == .validationFailure {
                printError("\(name): \(Command.fullMessage(for: error))")
                exit(usageExitCode)
            }
            if let exitCode = error as? ExitCode { exit(exitCode.rawValue) }
            printError("\(name): \(Command.fullMessage(for: error))")
            exit(code.rawValue == 0 ? 1 : code.rawValue)
        }
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

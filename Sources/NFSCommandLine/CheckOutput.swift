import Foundation

/// How nfs-check prints a ``CheckReport``.
public enum CheckOutput {
    /// The monitoring-plugin summary line: status, counts, and perfdata after `|`.
    public static func summaryLine(_ report: CheckReport) -> String {
        let failing = report.steps.filter { $0.status != .ok }
        let what = failing.isEmpty ? "\(report.steps.count) steps passed"
            : failing.map { "\($0.name): \($0.detail)" }.joined(separator: "; ")
        let perf = report.steps.map { "'\($0.name)'=\(format($0.milliseconds))ms" }.joined(separator: " ")
        return "NFS \(report.status) - \(what) in \(format(report.milliseconds)) ms | \(perf)"
    }

    /// The summary line, then one line per step.
    public static func human(_ report: CheckReport) -> String {
        let width = report.steps.map(\.name.count).max() ?? 0
        var lines = [summaryLine(report)]
        for step in report.steps {
            let status = step.status.description.padding(toLength: 9, withPad: " ", startingAt: 0)
            let name = step.name.padding(toLength: width, withPad: " ", startingAt: 0)
            lines.append("\(status)\(name)  \(format(step.milliseconds)) ms  \(step.detail)")
        }
        return lines.joined(separator: "\n")
    }

    /// One JSON object (one line), keys sorted.
    public static func json(_ report: CheckReport) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        struct Wire: Encodable {
            let report: CheckReport
            enum Keys: String, CodingKey { case url, round, status, exitCode, milliseconds, steps }
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: Keys.self)
                try c.encode(report.url, forKey: .url)
                try c.encode(report.round, forKey: .round)
                try c.encode(report.status, forKey: .status)
                try c.encode(report.status.rawValue, forKey: .exitCode)
                try c.encode(report.milliseconds, forKey: .milliseconds)
                try c.encode(report.steps, forKey: .steps)
            }
        }
        return (try? encoder.encode(Wire(report: report))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    private static let help: [String: String] = [
        "free_bytes": "Bytes available to unprivileged users on the share.",
        "total_bytes": "Size of the share's file system in bytes.",
        "entries": "Entries in the listed directory.",
        "bytes": "Bytes read from the file.",
        "bytes_per_second": "Read throughput in bytes per second.",
    ]

    /// Prometheus text exposition (for node_exporter's textfile collector), with HELP and TYPE lines.
    public static func prometheus(_ report: CheckReport) -> String {
        let url = "url=\"\(escape(report.url))\""
        var out: [String] = []
        func family(_ name: String, _ help: String, _ samples: [(String, Double)]) {
            guard !samples.isEmpty else { return }
            out.append("# HELP \(name) \(help)")
            out.append("# TYPE \(name) gauge")
            for (labels, value) in samples { out.append("\(name){\(labels)} \(number(value))") }
        }
        family("nfs_check_status", "Result of the whole check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
               [(url, Double(report.status.rawValue))])
        family("nfs_check_duration_seconds", "Time the whole check took, in seconds.", [(url, report.milliseconds / 1000)])
        let stepLabels = report.steps.map { "\(url),step=\"\(escape($0.name))\"" }
        family("nfs_check_step_status", "Result of one step: 0 OK, 1 WARNING, 2 CRITICAL.",
               zip(stepLabels, report.steps).map { ($0, Double($1.status.rawValue)) })
        family("nfs_check_step_duration_seconds", "Time one step took, in seconds.",
               zip(stepLabels, report.steps).map { ($0, $1.milliseconds / 1000) })
        let keys = Set(report.steps.flatMap(\.values.keys)).sorted()
        for key in keys {
            family("nfs_check_\(key)", help[key] ?? key,
                   zip(stepLabels, report.steps).compactMap { label, step in step.values[key].map { (label, $0) } })
        }
        return out.joined(separator: "\n") + "\n"
    }

    private static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    private static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    private static func format(_ ms: Double) -> String { String(format: "%.1f", ms) }
}

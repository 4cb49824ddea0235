import Foundation
import HeraldCore
import Prometheus

/// A metric family computed when Prometheus scrapes (backlogs, pool use, process figures), rendered beside the
/// registry's recorded instruments.
public struct SampledFamily: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case gauge, counter
    }

    public var name: String
    public var help: String
    public var kind: Kind
    public var samples: [Sample]

    public struct Sample: Sendable, Equatable {
        public var labels: [(String, String)]
        public var value: Double

        public init(labels: [(String, String)] = [], value: Double) {
            self.labels = labels
            self.value = value
        }

        public static func == (lhs: Sample, rhs: Sample) -> Bool {
            lhs.value == rhs.value && lhs.labels.elementsEqual(rhs.labels) { $0 == $1 }
        }
    }

    public init(name: String, help: String, kind: Kind = .gauge, samples: [Sample]) {
        self.name = name
        self.help = help
        self.kind = kind
        self.samples = samples
    }
}

/// Renders the Prometheus text exposition (format 0.0.4) of the process: the registry's instruments, then each
/// collector's families. A collector that fails or takes longer than `collectorTimeout` is left out of that
/// scrape (and counted in `herald_metrics_collector_failures`), so a slow database cannot hang the scrape.
public struct MetricsExporter: Sendable {
    public typealias Collector = @Sendable () async throws -> [SampledFamily]

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private let collectors: [(name: String, collect: Collector)]
    private let collectorTimeout: Duration

    public init(collectors: [(name: String, collect: Collector)], collectorTimeout: Duration = .seconds(5)) {
        self.collectors = collectors
        self.collectorTimeout = collectorTimeout
    }

    public func render() async -> String {
        var text = HeraldMetrics.registry.emitToString()
        var failed: [String] = []
        for collector in collectors {
            do {
                let families = try await withDeadline(collectorTimeout, collector.collect)
                for family in families { Self.append(family, to: &text) }
            } catch {
                failed.append(collector.name)
            }
        }
        Self.append(
            SampledFamily(
                name: "herald_metrics_collector_failures",
                help: "Scrape-time collectors that failed or timed out in this scrape (their families are missing).",
                samples: collectors.map { .init(labels: [("collector", $0.name)], value: failed.contains($0.name) ? 1 : 0) }
            ),
            to: &text
        )
        return text
    }

    static func append(_ family: SampledFamily, to text: inout String) {
        text += "# HELP \(family.name) \(family.help.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n"))\n"
        text += "# TYPE \(family.name) \(family.kind.rawValue)\n"
        for sample in family.samples {
            text += family.name
            if !sample.labels.isEmpty {
                text += "{"
                text += sample.labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
                text += "}"
            }
            text += " \(format(sample.value))\n"
        }
    }

    static func escape(_ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}

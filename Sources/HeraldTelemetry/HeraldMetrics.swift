import Metrics
import Prometheus

/// Herald's metrics. Modules record through swift-metrics (`Counter`, `Timer`, …), which costs nothing until
/// `enable()` points it at the one Prometheus registry of the process; `/metrics` renders that registry plus the
/// values only known at scrape time (``MetricsExporter``).
public enum HeraldMetrics {
    /// The registry every swift-metrics instrument of this process records into once metrics are enabled.
    public static let registry = PrometheusCollectorRegistry()

    // A static initializer runs exactly once per process, which is what `MetricsSystem.bootstrap` requires.
    private static let bootstrapped: Bool = {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Request latencies of a popup service live between a millisecond and a few seconds.
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        MetricsSystem.bootstrap(factory)
        return true
    }()

    /// Sends every swift-metrics instrument created from now on to ``registry``. Idempotent.
    public static func enable() {
        _ = bootstrapped
    }

    /// Whether ``enable()`` ran: instruments made before it record nowhere.
    public static var isEnabled: Bool {
        MetricsSystem.factory is PrometheusMetricsFactory
    }
}

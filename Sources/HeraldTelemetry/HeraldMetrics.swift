import Metrics
import Prometheus

/// Herald's metrics. Modules record through swift-metrics (`Counter`, `Timer`, …), which costs nothing until
/// `enable()` points it at the one Prometheus registry of the process; `/metrics` renders that registry plus the
/// values only known at scrape time (``MetricsExporter``).
public enum HeraldMetrics {
    /// The registry every swift-metrics instrument of this process records into once metrics are enabled.
    public static let registry = PrometheusCollectorRegistry()

    /// Request latencies of a popup service live between a millisecond and a few seconds.
    static let durationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// The `# HELP` line of each family recorded through swift-metrics, whose API has no place for one. Every family
    /// a module records belongs here (MetricsTests checks that a scrape has no family without help).
    static let help: [String: String] = [
        "herald_http_requests_total": "HTTP requests answered, by service, method, route and status.",
        "herald_http_request_duration_seconds": "Time to answer an HTTP request, by service, method and route.",
        "herald_beacon_events_total": "Beacon events received from widgets, by outcome (accepted, bot, refused, failed).",
        "herald_channel_deliveries_total": "Email and web push messages sent to visitors, by channel and outcome.",
        "herald_webhook_deliveries_total": "Outbound webhook delivery attempts, by outcome.",
    ]

    // A static initializer runs exactly once per process, which is what `MetricsSystem.bootstrap` requires.
    private static let bootstrapped: Bool = {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = durationBuckets
        MetricsSystem.bootstrap(HelpingMetricsFactory(base: factory, help: help))
        return true
    }()

    /// Sends every swift-metrics instrument created from now on to ``registry``. Idempotent.
    public static func enable() {
        _ = bootstrapped
    }

    /// Whether ``enable()`` ran: instruments made before it record nowhere.
    public static var isEnabled: Bool {
        MetricsSystem.factory is HelpingMetricsFactory
    }
}

/// Prometheus's factory for swift-metrics, with the `# HELP` text of the families it knows: counters and timers of
/// those names are made with their help; everything else goes to the base factory as it is.
struct HelpingMetricsFactory: MetricsFactory {
    let base: PrometheusMetricsFactory
    let help: [String: String]

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let text = help[label] else { return base.makeCounter(label: label, dimensions: dimensions) }
        return base.registry.makeCounter(name: label, labels: dimensions, help: text)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        base.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        base.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        base.makeMeter(label: label, dimensions: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let text = help[label] else { return base.makeTimer(label: label, dimensions: dimensions) }
        let buckets = base.durationHistogramBuckets[label] ?? base.defaultDurationHistogramBuckets
        return base.registry.makeDurationHistogram(name: label, labels: dimensions, buckets: buckets, help: text)
    }

    func destroyCounter(_ handler: any CounterHandler) { base.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { base.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { base.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { base.destroyTimer(handler) }
}

import Logging
import OTel
import ServiceLifecycle
import Synchronization
import Tracing

/// Distributed tracing with OpenTelemetry: a span per request and per consumed event, exported over OTLP/HTTP by
/// swift-otel. Configured by the standard variables (OTEL_EXPORTER_OTLP_ENDPOINT or
/// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT to turn it on, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, …); off without an
/// endpoint, and then every span is a no-op.
public enum HeraldTracing {
    /// Whether the environment asks for traces.
    public static func isRequested(_ environment: [String: String]) -> Bool {
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" || environment["OTEL_TRACES_EXPORTER"]?.lowercased() == "none" {
            return false
        }
        return [environment["OTEL_EXPORTER_OTLP_ENDPOINT"], environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]].contains { !($0 ?? "").isEmpty }
    }

    private static let bootstrapped = Mutex(false)

    /// Points swift-distributed-tracing at an OTLP/HTTP exporter, once per process, and returns the service that
    /// batches and sends spans (run it with the application so spans are flushed on shutdown). Nil when tracing is
    /// not requested or a tracer is already in place.
    public static func bootstrap(environment: [String: String], defaultServiceName: String, logger: Logger) throws -> (any Service)? {
        guard isRequested(environment) else { return nil }
        guard
            bootstrapped.withLock({ done in
                defer { done = true }; return !done
            })
        else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = defaultServiceName
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        // OTLP's default transport; OTEL_EXPORTER_OTLP_PROTOCOL=http/json also works, gRPC is not built in.
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        // OTEL_* variables override these (the service name, endpoint, sampler, batch delays, headers).
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        return backend.service
    }

    /// Adds `trace_id` and `span_id` of the current span to every log line written inside it.
    public static let loggingMetadataProvider: Logger.MetadataProvider = OTel.makeLoggingMetadataProvider()
}

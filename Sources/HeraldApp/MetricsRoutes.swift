import Foundation
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldSecurity
import HeraldStorage
import HeraldTelemetry
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// What `/metrics` renders besides the instruments modules record: the bus's backlog per consumer group, the
/// store's pool, the process.
func makeMetricsExporter(database: any Database, bus: any EventBus) -> MetricsExporter {
    MetricsExporter(collectors: [
        (
            "bus",
            {
                let lag = try await bus.lag()
                let now = Date()
                return [
                    SampledFamily(
                        name: "herald_bus_lag_events", help: "Events published that a consumer group of this process has not processed yet.",
                        samples: lag.map { .init(labels: [("group", $0.group)], value: Double($0.pending)) }
                    ),
                    SampledFamily(
                        name: "herald_bus_retrying_events", help: "Deliveries of a consumer group waiting for a retry.",
                        samples: lag.map { .init(labels: [("group", $0.group)], value: Double($0.retrying)) }
                    ),
                    SampledFamily(
                        name: "herald_bus_dead_letters",
                        help: "Deliveries of a consumer group that exhausted their retries and wait for an operator to requeue or drop them.",
                        samples: lag.map { .init(labels: [("group", $0.group)], value: Double($0.dead)) }
                    ),
                    SampledFamily(
                        name: "herald_bus_oldest_pending_age_seconds",
                        help: "Age of the oldest event a consumer group has not processed (0 when caught up).",
                        samples: lag.map {
                            .init(labels: [("group", $0.group)], value: $0.oldestPendingAt.map { max(0, now.timeIntervalSince($0)) } ?? 0)
                        }
                    ),
                ]
            }
        ),
        (
            "database",
            {
                let use = database.poolUse
                return [
                    SampledFamily(
                        name: "herald_db_pool_connections",
                        help:
                            "The store's connection pool: connections transactions hold (in_use), transactions waiting (waiting), the pool's size (capacity).",
                        samples: [
                            .init(labels: [("state", "in_use")], value: Double(use.inUse)),
                            .init(labels: [("state", "waiting")], value: Double(use.waiting)),
                            .init(labels: [("state", "capacity")], value: Double(use.capacity)),
                        ]
                    )
                ]
            }
        ),
        ("process", { ProcessMetrics.collect() }),
    ])
}

func metricsResponse(_ exporter: MetricsExporter) async -> Response {
    let text = await exporter.render()
    return Response(
        status: .ok,
        headers: [.contentType: MetricsExporter.contentType, .cacheControl: "no-store"],
        body: ResponseBody(byteBuffer: ByteBuffer(string: text))
    )
}

/// `GET /metrics` on the service's listener: for callers presenting HERALD_METRICS_TOKEN when one is set, 404
/// otherwise (also when the metrics have a listener of their own). Routed either way, as the OpenAPI document says.
func addMetricsRoute(to router: some RouterMethods<HeraldRequestContext>, exporter: MetricsExporter?, token: String?) {
    router.get("metrics") { request, _ -> Response in
        guard let exporter, let token else {
            throw HeraldError(
                status: 404, slug: "not-found", title: "Not found",
                detail: "This listener serves no metrics: HERALD_METRICS_TOKEN serves them here, HERALD_METRICS_PORT on a listener of their own."
            )
        }
        guard SecretToken.bearerMatches(request.headers[.authorization], expected: token) else {
            throw HeraldError.unauthorized("Metrics need the metrics token (HERALD_METRICS_TOKEN): 'Authorization: Bearer <token>'.")
        }
        return await metricsResponse(exporter)
    }
}

/// A listener of its own for `GET /metrics` (HERALD_METRICS_PORT): plain HTTP, no authentication, nothing else.
func makeMetricsListener(exporter: MetricsExporter, host: String, port: Int, logger: Logger) -> any Service {
    let router = Router()
    router.get("metrics") { _, _ in await metricsResponse(exporter) }
    return Application(
        router: router,
        configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
        onServerRunning: { channel in
            logger.info("metrics listener", metadata: ["address": "\(channel.localAddress?.description ?? "?")"])
        },
        logger: logger
    )
}

import Foundation

/// Where `/metrics` is served. Off unless the operator picks one of the two ways, because the figures (routes,
/// backlogs, pool use) are operational detail an outsider should not read.
public struct MetricsConfiguration: Sendable, Equatable {
    /// A listener of its own, plain HTTP without authentication (HERALD_METRICS_PORT, on HERALD_METRICS_HOST, by
    /// default the service's host): for a pod port or a private network that only Prometheus reaches.
    public var port: Int?
    public var host: String?
    /// `/metrics` on the service's own listener, for callers presenting `Authorization: Bearer <token>`
    /// (HERALD_METRICS_TOKEN, at least 16 characters).
    public var token: String?

    public init(port: Int? = nil, host: String? = nil, token: String? = nil) {
        self.port = port
        self.host = host
        self.token = token
    }

    public var isEnabled: Bool { port != nil || token != nil }
}

extension HeraldConfiguration {
    /// Reads HERALD_METRICS_PORT, HERALD_METRICS_HOST and HERALD_METRICS_TOKEN.
    static func readMetrics(_ environment: [String: String]) throws -> MetricsConfiguration {
        var metrics = MetricsConfiguration()
        if let port = environment["HERALD_METRICS_PORT"], !port.isEmpty {
            do {
                metrics.port = try parsePort(port)
            } catch {
                throw ConfigurationError("HERALD_METRICS_PORT: \(error)")
            }
        }
        if let host = environment["HERALD_METRICS_HOST"], !host.isEmpty {
            guard metrics.port != nil else {
                throw ConfigurationError("HERALD_METRICS_HOST needs HERALD_METRICS_PORT: the port of the metrics listener")
            }
            metrics.host = host
        }
        metrics.token = try secret(environment, "HERALD_METRICS_TOKEN", minimum: 16)
        return metrics
    }
}

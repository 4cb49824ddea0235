import HTTPTypes
import HeraldCore
import Hummingbird
import Metrics
import Synchronization

/// Filled in while a request travels through the router, for the metrics middleware that wraps it: the service
/// whose route answered. A reference, because the context is a value and inner middleware gets a copy.
public final class RequestObservation: Sendable {
    private let serviceName = Mutex<String?>(nil)

    public init() {}

    public var service: String? {
        get { serviceName.withLock { $0 } }
        set { serviceName.withLock { $0 = newValue } }
    }
}

/// Counts every request by service, method, route template and status (`herald_http_requests_total`) and times it
/// (`herald_http_request_duration_seconds`, until the response head; a live stream's body is not timed). Outermost
/// in the chain, so it sees the status a client sees, problem responses included.
public struct HTTPMetricsMiddleware: RouterMiddleware {
    public typealias Context = HeraldRequestContext
    private let instruments = InstrumentCache.shared

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let observation = RequestObservation()
        var context = context
        context.observation = observation
        let status: HTTPResponse.Status
        do {
            let response = try await next(request, context)
            status = response.status
            record(request, context: context, observation: observation, status: status, start: start)
            return response
        } catch {
            status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            record(request, context: context, observation: observation, status: status, start: start)
            throw error
        }
    }

    private func record(
        _ request: Request, context: Context, observation: RequestObservation, status: HTTPResponse.Status, start: ContinuousClock.Instant
    ) {
        // Unmatched paths share one label value, so a scanner cannot create a series per path it tries.
        let route = context.endpointPath.flatMap { $0 == "NotFound" ? nil : $0 } ?? "unmatched"
        let method = Self.methods.contains(request.method) ? request.method.rawValue : "OTHER"
        let key = InstrumentCache.Key(service: observation.service ?? "none", method: method, route: route, status: Int(status.code))
        let (counter, timer) = instruments.instruments(for: key)
        counter.increment()
        timer.recordInterval(since: start)
    }

    static let methods: Set<HTTPRequest.Method> = [.get, .head, .post, .put, .patch, .delete, .options]
}

/// Tags the requests a module's routes answer with the module's name, for ``HTTPMetricsMiddleware``.
public struct ServiceLabelMiddleware: RouterMiddleware {
    public typealias Context = HeraldRequestContext
    let service: String

    public init(service: String) {
        self.service = service
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        context.observation?.service = service
        return try await next(request, context)
    }
}

/// swift-metrics looks instruments up by label and dimensions under a lock in the factory; keeping them per key
/// here makes recording one dictionary read.
final class InstrumentCache: Sendable {
    /// One for the process: the middleware and ``FastPathHandler`` count into the same series.
    static let shared = InstrumentCache()

    struct Key: Hashable, Sendable {
        var service: String
        var method: String
        var route: String
        var status: Int
    }

    private let cache = Mutex<[Key: (Counter, Timer)]>([:])

    func instruments(for key: Key) -> (Counter, Timer) {
        cache.withLock { cache in
            if let found = cache[key] { return found }
            let made = (
                Counter(
                    label: "herald_http_requests_total",
                    dimensions: [("service", key.service), ("method", key.method), ("route", key.route), ("status", String(key.status))]
                ),
                Timer(
                    label: "herald_http_request_duration_seconds",
                    dimensions: [("service", key.service), ("method", key.method), ("route", key.route)],
                    preferredDisplayUnit: .seconds
                )
            )
            cache[key] = made
            return made
        }
    }
}

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        recordNanoseconds((ContinuousClock.now - start).nanoseconds)
    }
}

import AsyncHTTPClient
import Foundation
import HeraldCore
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Tracing

/// Calls another Herald service over HTTP the way seed items 71–72 ask: a deadline per attempt, a few retries with
/// exponential backoff and jitter for failures that may pass (no answer, 502, 503, 504), a circuit breaker that
/// fails fast while the service is down, the caller's trace context, and one error callers turn into a 503 with
/// Retry-After. Only for reads and idempotent lookups: a retried call must be safe to repeat.
public final class ServiceClient: Sendable {
    public struct Options: Sendable {
        public var timeout: Duration = .seconds(2)
        public var retries = 2
        public var backoff: Duration = .milliseconds(50)
        public var failureThreshold = 5
        public var openFor: Duration = .seconds(10)

        public init() {}
    }

    /// The service did not answer (or its breaker is open): callers answer 503 with `retryAfter`.
    public struct Unavailable: Error, CustomStringConvertible {
        public var service: String
        public var reason: String
        public var retryAfter: Duration

        public var description: String { "the \(service) service is unavailable: \(reason)" }
    }

    public let service: String
    public let baseURL: String
    let token: String
    let http: HTTPClient
    let options: Options
    let logger: Logger
    public let breaker: CircuitBreaker

    public init(service: String, baseURL: String, token: String, http: HTTPClient, options: Options = Options(), logger: Logger) {
        self.service = service
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        self.http = http
        self.options = options
        self.logger = logger
        self.breaker = CircuitBreaker(failureThreshold: options.failureThreshold, openFor: options.openFor)
    }

    /// Sends the request and returns the status and body of the first definite answer (2xx or 4xx).
    public func send(_ method: HTTPMethod, _ path: String, json body: Data? = nil) async throws -> (status: Int, body: Data) {
        var attempt = 0
        while true {
            let permit = breaker.permit()
            guard permit.allowed else {
                throw Unavailable(service: service, reason: "it failed repeatedly; calls resume shortly", retryAfter: permit.retryAfter)
            }
            do {
                let answer = try await once(method, path, body: body)
                if [502, 503, 504].contains(answer.status) { throw Transient(reason: "it answered \(answer.status)") }
                breaker.recordSuccess()
                return answer
            } catch let error as Transient {
                try await failed(error.reason, attempt: &attempt)
            } catch let error as HTTPClientError where error == .deadlineExceeded || error == .connectTimeout || error == .remoteConnectionClosed {
                try await failed("\(error)", attempt: &attempt)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // Refused connections, resets, TLS failures: the service is not there.
                try await failed("\(error)", attempt: &attempt)
            }
        }
    }

    struct Transient: Error {
        var reason: String
    }

    private func failed(_ reason: String, attempt: inout Int) async throws {
        breaker.recordFailure()
        guard attempt < options.retries, breaker.state != .open else {
            logger.warning("service call failed", metadata: ["service": "\(service)", "reason": "\(reason)"])
            throw Unavailable(service: service, reason: reason, retryAfter: breaker.state == .open ? options.openFor : .seconds(1))
        }
        // Exponential backoff with full jitter: 0…50 ms, 0…100 ms, …
        let ceiling = options.backoff * (1 << attempt)
        try await Task.sleep(for: .nanoseconds(Int64.random(in: 0...max(1, ceiling.nanoseconds))))
        attempt += 1
    }

    private func once(_ method: HTTPMethod, _ path: String, body: Data?) async throws -> (status: Int, body: Data) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "User-Agent", value: "Herald-Service/\(HeraldVersion.current)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        return try await withSpan("\(service) \(method.rawValue)", ofKind: .client) { span in
            span.attributes["http.request.method"] = method.rawValue
            span.attributes["url.full"] = baseURL + String(path.prefix { $0 != "?" })
            if let context = ServiceContext.current {
                InstrumentationSystem.instrument.inject(context, into: &request.headers, using: HeadersInjector())
            }
            let response = try await http.execute(request, timeout: .nanoseconds(options.timeout.nanoseconds), logger: logger)
            let collected = try await response.body.collect(upTo: 1 << 20)
            span.attributes["http.response.status_code"] = Int(response.status.code)
            return (Int(response.status.code), Data(buffer: collected))
        }
    }
}

struct HeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into headers: inout HTTPHeaders) {
        headers.replaceOrAdd(name: key, value: value)
    }
}

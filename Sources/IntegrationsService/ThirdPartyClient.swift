import AsyncHTTPClient
import Foundation
import HeraldCore
import HeraldSecurity
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The one way Herald calls third parties (Shopify, WooCommerce): bounded timeouts, retries with backoff that
/// honour `Retry-After`, a per-integration rate limit, and a circuit breaker that stops hammering a failing
/// store for a while and says so in the integration's status.
final class ThirdPartyClient: Sendable {
    let http: HTTPClient
    let outbound: OutboundGuard
    let limiter: any RateLimiter
    let breakers = Mutex<[UUID: Integration.Health]>([:])
    let logger: Logger
    /// Requests per second allowed per integration.
    static let ratePerSecond = 4
    static let failuresToOpen = 5
    static let openFor: TimeInterval = 60
    static let maxAttempts = 3

    init(http: HTTPClient, outbound: OutboundGuard, limiter: any RateLimiter, logger: Logger) {
        self.http = http
        self.outbound = outbound
        self.limiter = limiter
        self.logger = logger
    }

    struct Reply: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    enum Failure: Error, CustomStringConvertible {
        case circuitOpen(until: Date)
        case refused(String)
        case status(Int, String)
        case transport(String)

        var description: String {
            switch self {
            case .circuitOpen(let until): "calls to this store are paused after repeated failures until \(ISO8601.string(from: until))"
            case .refused(let reason): "the address was refused: \(reason)"
            case .status(let code, let body): "the store answered \(code): \(body.prefix(200))"
            case .transport(let reason): "the store could not be reached: \(reason)"
            }
        }
    }

    /// The integration's breaker state as last seen by this process.
    func health(_ integration: Integration) -> Integration.Health {
        breakers.withLock { $0[integration.id] } ?? integration.health
    }

    /// Sends a request for an integration and returns the reply of the first attempt that is not retryable.
    func send(
        _ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil, for integration: Integration
    ) async throws -> Reply {
        let now = Date()
        var health = self.health(integration)
        if health.circuit == "open", let opened = health.openedAt {
            if now.timeIntervalSince(opened) < Self.openFor {
                throw Failure.circuitOpen(until: opened.addingTimeInterval(Self.openFor))
            }
            health.circuit = "half-open"
            let trial = health
            breakers.withLock { $0[integration.id] = trial }
        }
        do {
            _ = try await outbound.check(url)
        } catch {
            throw Failure.refused(error.description)
        }
        var lastFailure: Failure = .transport("no attempt was made")
        for attempt in 1...Self.maxAttempts {
            // Rate limit: wait for a slot rather than fail.
            while await limiter.hit("thirdparty:\(integration.id.lowercased)", window: .seconds(1), now: Date()) > Self.ratePerSecond {
                try await Task.sleep(for: .milliseconds(250))
            }
            var request = HTTPClientRequest(url: url)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
            var retryAfter: Duration?
            do {
                let response = try await http.execute(request, timeout: .seconds(20), logger: logger)
                let bytes = try await response.body.collect(upTo: 8 * 1024 * 1024)
                let status = Int(response.status.code)
                if status < 400 {
                    record(success: true, integration: integration, error: nil)
                    return Reply(status: status, headers: response.headers, body: bytes)
                }
                lastFailure = .status(status, String(buffer: bytes))
                guard status == 429 || status >= 500 else {
                    // A refusal of this request, not a failing store: the breaker is not involved.
                    record(success: true, integration: integration, error: nil)
                    throw lastFailure
                }
                if let header = response.headers.first(name: "Retry-After"), let seconds = Double(header) {
                    retryAfter = .milliseconds(Int(min(seconds, 30) * 1000))
                }
            } catch let failure as Failure {
                throw failure
            } catch {
                lastFailure = .transport("\(error)")
            }
            if attempt < Self.maxAttempts {
                try await Task.sleep(for: retryAfter ?? .milliseconds(500 * (1 << (attempt - 1))))
            }
        }
        record(success: false, integration: integration, error: lastFailure.description)
        throw lastFailure
    }

    private func record(success: Bool, integration: Integration, error: String?) {
        breakers.withLock { breakers in
            var health = breakers[integration.id] ?? integration.health
            let now = Date()
            if success {
                health.circuit = "closed"
                health.consecutiveFailures = 0
                health.openedAt = nil
                health.lastSuccessAt = now
            } else {
                health.consecutiveFailures += 1
                health.lastError = error.map { String($0.prefix(500)) }
                health.lastFailureAt = now
                if health.circuit == "half-open" || health.consecutiveFailures >= Self.failuresToOpen {
                    health.circuit = "open"
                    health.openedAt = now
                }
            }
            breakers[integration.id] = health
        }
    }
}

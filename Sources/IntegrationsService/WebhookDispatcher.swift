import AsyncHTTPClient
import Foundation
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldModules
import HeraldStorage
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Tracing

/// Delivers due messages: signs, sends with a bounded timeout after checking the resolved address, records
/// the attempt, and schedules the next one or gives up. Deliveries are rows, so they survive restarts.
final class WebhookDispatcher: Service, Sendable {
    let database: any Database
    let bus: any EventBus
    let http: HTTPClient
    let outbound: OutboundGuard
    let endpoints: EndpointStore
    let messages = WebhookMessageStore()
    let policy: WebhookRetryPolicy
    let logger: Logger
    let signal = WakeSignal()
    /// `herald_webhook_deliveries_total`: every attempt, delivered (a 2xx) or failed (anything else, retried or not).
    let deliveredAttempts = Counter(label: "herald_webhook_deliveries_total", dimensions: [("outcome", "delivered")])
    let failedAttempts = Counter(label: "herald_webhook_deliveries_total", dimensions: [("outcome", "failed")])
    static let timeout: TimeAmount = .seconds(15)
    static let parallel = 8

    init(
        database: any Database, bus: any EventBus, http: HTTPClient, outbound: OutboundGuard, endpoints: EndpointStore, policy: WebhookRetryPolicy,
        logger: Logger
    ) {
        self.database = database
        self.bus = bus
        self.http = http
        self.outbound = outbound
        self.endpoints = endpoints
        self.policy = policy
        self.logger = logger
    }

    /// Wakes the dispatcher when a message became due now.
    func wake() { signal.signalAll() }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let worked = (try? await self.deliverDue()) ?? false
                if !worked { await self.signal.wait(timeout: .seconds(1)) }
            }
        }
    }

    /// Claims up to a batch of due messages and delivers them in parallel.
    func deliverDue() async throws -> Bool {
        let now = Date()
        let due = try await database.transaction(.system) { tx in
            try await messages.claimDue(now: now, limit: Self.parallel * 4, in: tx)
        }
        guard !due.isEmpty else { return false }
        await withTaskGroup(of: Void.self) { group in
            var iterator = due.makeIterator()
            for _ in 0..<Self.parallel {
                guard let next = iterator.next() else { break }
                group.addTask { await self.deliver(next.0, organizationId: next.1) }
            }
            while await group.next() != nil {
                if let next = iterator.next() { group.addTask { await self.deliver(next.0, organizationId: next.1) } }
            }
        }
        return true
    }

    func deliver(_ messageId: String, organizationId: UUID) async {
        do {
            try await attempt(messageId, organizationId: organizationId)
        } catch {
            logger.warning("webhook delivery step failed", metadata: ["message": "\(messageId)", "error": "\(error)"])
        }
    }

    private func attempt(_ messageId: String, organizationId: UUID) async throws {
        let scope = TenantScope.organization(organizationId)
        let loaded = try await database.transaction(scope) { tx -> (WebhookMessage, WebhookEndpoint)? in
            guard let message = try await messages.find(messageId, in: tx), let endpoint = try await endpoints.find(message.endpointId, in: tx) else {
                try await messages.dequeue(messageId, in: tx)
                return nil
            }
            return (message, endpoint)
        }
        guard let (message, endpoint) = loaded else { return }
        guard endpoint.status == "enabled", message.status == "pending" else {
            try await database.transaction(scope) { tx in
                if message.status == "pending" { try await messages.failForDisabledEndpoint(messageId, in: tx) }
                try await messages.dequeue(messageId, in: tx)
            }
            return
        }

        let started = ContinuousClock.now
        let now = Date()
        var statusCode: Int?
        var failure: String?
        var retryAfter: TimeInterval?
        do {
            _ = try await outbound.check(endpoint.url)
            let timestamp = Int64(now.timeIntervalSince1970)
            let body = Array(message.payload.utf8)
            let signatures = endpoint.signingSecrets(at: now).map {
                WebhookSignature.signStandard(id: message.id, timestamp: timestamp, body: body, secret: $0)
            }
            var request = HTTPClientRequest(url: endpoint.url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "Herald-Webhooks/1")
            request.headers.add(name: "webhook-id", value: message.id)
            request.headers.add(name: "webhook-timestamp", value: String(timestamp))
            request.headers.add(name: "webhook-signature", value: signatures.joined(separator: " "))
            request.body = .bytes(ByteBuffer(bytes: body))
            // A client span per attempt; the receiver gets its traceparent and can continue the trace.
            let response = try await withSpan("webhook POST", ofKind: .client) { span in
                span.attributes["http.request.method"] = "POST"
                span.attributes["url.full"] = endpoint.url
                span.attributes["herald.webhook.message_id"] = message.id
                if let context = ServiceContext.current {
                    InstrumentationSystem.instrument.inject(context, into: &request.headers, using: HTTPHeadersInjector())
                }
                let response = try await http.execute(request, timeout: Self.timeout, logger: logger)
                span.attributes["http.response.status_code"] = Int(response.status.code)
                if !(200..<300).contains(response.status.code) { span.setStatus(SpanStatus(code: .error)) }
                return response
            }
            statusCode = Int(response.status.code)
            _ = try? await response.body.collect(upTo: 64 * 1024)
            if let header = response.headers.first(name: "Retry-After") {
                retryAfter = Double(header) ?? HTTPDate.parse(header).map { $0.timeIntervalSince(now) }
            }
            if !(200..<300).contains(statusCode ?? 0) { failure = "the receiver answered \(statusCode ?? 0)" }
        } catch let refusal as OutboundGuard.Refusal {
            failure = "the URL \(refusal.description)"
        } catch {
            failure = "\(error)"
        }
        if failure == nil { deliveredAttempts.increment() } else { failedAttempts.increment() }
        let elapsed = ContinuousClock.now - started
        let duration = Int(elapsed.components.seconds * 1000) + Int(elapsed.components.attoseconds / 1_000_000_000_000_000)
        let attempts = message.attempts + 1
        var disabled: WebhookEndpointDisabled?
        let lastError = failure.map { String($0.prefix(500)) }
        try await database.transaction(scope) { tx in
            try await messages.recordAttempt(
                messageId, organizationId: organizationId, at: now, statusCode: statusCode, error: lastError, durationMs: duration, in: tx
            )
            if failure == nil {
                try await messages.markDelivered(messageId, attempts: attempts, statusCode: statusCode, at: now, in: tx)
                try await messages.dequeue(messageId, in: tx)
                try await endpoints.resetFailures(endpoint.id, in: tx)
                return
            }
            if statusCode == 410 {
                // Gone: the receiver asks Herald to stop.
                disabled = WebhookEndpointDisabled(
                    endpointId: endpoint.id, siteId: endpoint.siteId, url: endpoint.url, reason: "the receiver answered 410 Gone")
            }
            let next = disabled == nil ? policy.delay(afterAttempts: attempts).map { max($0, min(retryAfter ?? 0, 86_400)) } : nil
            let status = next == nil ? (disabled == nil ? "dead" : "failed") : "pending"
            try await messages.markFailed(
                messageId, status: status, attempts: attempts, statusCode: statusCode, error: lastError,
                nextAttemptAt: next.map { now.addingTimeInterval($0) }, in: tx
            )
            if let next {
                try await messages.enqueue(messageId, organizationId: organizationId, at: now.addingTimeInterval(next), in: tx)
            } else {
                try await messages.dequeue(messageId, in: tx)
                let failures = try await endpoints.countFailure(endpoint.id, in: tx)
                if disabled == nil && failures >= policy.disableAfter {
                    disabled = WebhookEndpointDisabled(
                        endpointId: endpoint.id, siteId: endpoint.siteId, url: endpoint.url,
                        reason: "\(failures) messages in a row could not be delivered"
                    )
                }
            }
            if let disabled, try await endpoints.disable(endpoint.id, reason: disabled.reason, now: now, in: tx) {
                try await Outbox.append(disabled, organizationId: organizationId, siteId: endpoint.siteId, in: tx)
                try await AuditTrail.record(
                    "webhook_endpoint.disabled", target: "webhook_endpoint", endpoint.id.lowercased, organizationId: organizationId,
                    siteId: endpoint.siteId, actorUserId: nil, details: ["url": endpoint.url, "reason": disabled.reason, "via": "dispatcher"],
                    meta: .system, in: tx
                )
            }
        }
        if disabled != nil { bus.didCommitEvents() }
    }
}

enum HTTPDate {
    static func parse(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }
}

/// Writes trace headers (`traceparent`) into an outgoing AsyncHTTPClient request.
struct HTTPHeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into headers: inout HTTPHeaders) {
        headers.replaceOrAdd(name: key, value: value)
    }
}

import AsyncHTTPClient
import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldSecurity
import HeraldStorage
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// A customer's endpoint for Herald's events, signed per the Standard Webhooks specification.
struct WebhookEndpoint: Sendable {
    struct SigningSecret: Codable, Sendable {
        var secret: String
        var createdAt: Date
        /// Set on the previous secret when the secret is rotated: both sign until then.
        var expiresAt: Date?
    }

    var id: UUID
    var siteId: UUID
    var organizationId: UUID
    /// `webhook` (registered in the API) or `zapier` (a Zap's REST hook).
    var kind: String
    var url: String
    var description: String?
    var eventTypes: [String]
    /// `enabled` or `disabled`.
    var status: String
    var disabledReason: String?
    var secrets: [SigningSecret]
    var consecutiveFailures: Int
    var createdAt: Date
    var updatedAt: Date

    /// The secrets that sign a message now: the current one and any still in its rotation overlap.
    func signingSecrets(at now: Date) -> [String] {
        secrets.filter { $0.expiresAt.map { $0 > now } ?? true }.map(\.secret)
    }
}

/// An endpoint becomes disabled after too many failures in a row or a `410 Gone`.
public struct WebhookEndpointDisabled: DomainEvent {
    public static let eventType = "webhook_endpoint.disabled"
    public static let schemaVersion = 1
    public var endpointId: UUID
    public var siteId: UUID
    public var url: String
    public var reason: String
}

/// When and how outbound deliveries are retried.
public struct WebhookRetryPolicy: Sendable {
    /// Delay before each attempt: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; then dead letter.
    public var schedule: [TimeInterval]
    /// Failed messages in a row after which an endpoint is disabled.
    public var disableAfter: Int

    public init(schedule: [TimeInterval] = [0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000], disableAfter: Int = 50) {
        self.schedule = schedule
        self.disableAfter = disableAfter
    }

    /// The delay before attempt `n + 1` after `n` failed attempts, with ±10 % jitter; nil when exhausted.
    func delay(afterAttempts attempts: Int) -> TimeInterval? {
        guard attempts < schedule.count else { return nil }
        let base = schedule[attempts]
        return base == 0 ? 0 : base * Double.random(in: 0.9...1.1)
    }
}

struct EndpointStore: Sendable {
    let cipher: FieldCipher
    typealias T = IntegrationTables

    func sealed(_ secrets: [WebhookEndpoint.SigningSecret], id: UUID) throws -> [UInt8] {
        try cipher.encrypt(String(decoding: try JSONEncoder.herald.encode(secrets), as: UTF8.self), context: "integrations.endpoint:\(id.lowercased)")
    }

    func insert(_ endpoint: WebhookEndpoint, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.webhookEndpoints) (id, site_id, organization_id, kind, url, description, event_types, status, secrets, created_at, updated_at)
            VALUES (\(endpoint.id), \(endpoint.siteId), \(endpoint.organizationId), \(endpoint.kind), \(endpoint.url), \(endpoint.description),
                \(try SQLJSON(encoding: endpoint.eventTypes)), \(endpoint.status), \(try sealed(endpoint.secrets, id: endpoint.id)),
                \(endpoint.createdAt), \(endpoint.updatedAt))
            """
        )
    }

    func update(_ endpoint: WebhookEndpoint, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.webhookEndpoints) SET url = \(endpoint.url), description = \(endpoint.description),
                event_types = \(try SQLJSON(encoding: endpoint.eventTypes)), status = \(endpoint.status), disabled_reason = \(endpoint.disabledReason),
                secrets = \(try sealed(endpoint.secrets, id: endpoint.id)), consecutive_failures = \(endpoint.consecutiveFailures),
                updated_at = \(endpoint.updatedAt)
            WHERE id = \(endpoint.id)
            """
        )
    }

    func delete(_ endpoint: WebhookEndpoint, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            "DELETE FROM \(T.webhookQueue) WHERE message_id IN (SELECT id FROM \(T.webhookMessages) WHERE endpoint_id = \(endpoint.id))"
        )
        try await tx.execute("DELETE FROM \(T.webhookEndpoints) WHERE id = \(endpoint.id)")
    }

    func find(_ id: UUID, siteId: UUID? = nil, in tx: any SQLExecutor) async throws -> WebhookEndpoint? {
        let site: SQL = siteId.map { "AND site_id = \($0)" } ?? ""
        return try await tx.queryFirst("SELECT * FROM \(T.webhookEndpoints) WHERE id = \(id) \(site)").map(decode)
    }

    func list(siteId: UUID, kind: String? = nil, in tx: any SQLExecutor) async throws -> [WebhookEndpoint] {
        let filter: SQL = kind.map { "AND kind = \($0)" } ?? ""
        return try await tx.query("SELECT * FROM \(T.webhookEndpoints) WHERE site_id = \(siteId) \(filter) ORDER BY created_at, id").map(decode)
    }

    func decode(_ row: SQLRow) throws -> WebhookEndpoint {
        let id: UUID = try row.get("id")
        let typesText: String = try row.get("event_types")
        let secretsText = try cipher.decrypt(try row.get("secrets"), context: "integrations.endpoint:\(id.lowercased)")
        return WebhookEndpoint(
            id: id, siteId: try row.get("site_id"), organizationId: try row.get("organization_id"), kind: try row.get("kind"),
            url: try row.get("url"), description: try row.get("description"),
            eventTypes: try JSONDecoder().decode([String].self, from: Data(typesText.utf8)), status: try row.get("status"),
            disabledReason: try row.get("disabled_reason"),
            secrets: try JSONDecoder.herald.decode([WebhookEndpoint.SigningSecret].self, from: Data(secretsText.utf8)),
            consecutiveFailures: try row.get("consecutive_failures"), createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at")
        )
    }
}

/// One message to one endpoint, with its attempts, as the owner sees it.
struct WebhookMessage: Sendable, Encodable {
    struct Attempt: Sendable, Encodable {
        var attemptedAt: Date
        var statusCode: Int?
        var error: String?
        var durationMs: Int
    }

    var id: String
    var endpointId: UUID
    var eventType: String
    var eventId: UUID
    /// `pending`, `delivered`, `failed` (endpoint disabled or gone) or `dead` (retries exhausted; can be re-sent).
    var status: String
    var attempts: Int
    var nextAttemptAt: Date?
    var lastStatus: Int?
    var lastError: String?
    var createdAt: Date
    var deliveredAt: Date?
    var attemptLog: [Attempt]
    var payload: String
}

struct MessageStore: Sendable {
    typealias T = IntegrationTables

    func list(endpointId: UUID, limit: Int, in tx: any SQLExecutor) async throws -> [WebhookMessage] {
        let rows = try await tx.query(
            "SELECT * FROM \(T.webhookMessages) WHERE endpoint_id = \(endpointId) ORDER BY created_at DESC, id DESC LIMIT \(limit)"
        )
        var messages = try rows.map(decode)
        let ids = messages.map(\.id)
        if !ids.isEmpty {
            let attempts = try await tx.query(
                """
                SELECT * FROM \(T.webhookAttempts) WHERE message_id IN (\(SQL.joined(ids.map { "\($0)" }, separator: ", ")))
                ORDER BY attempted_at
                """
            )
            var byMessage: [String: [WebhookMessage.Attempt]] = [:]
            for row in attempts {
                let id: String = try row.get("message_id")
                byMessage[id, default: []].append(
                    .init(
                        attemptedAt: try row.get("attempted_at"), statusCode: try row.get("status_code"), error: try row.get("error"),
                        durationMs: try row.get("duration_ms"))
                )
            }
            for index in messages.indices { messages[index].attemptLog = byMessage[messages[index].id] ?? [] }
        }
        return messages
    }

    func find(_ id: String, in tx: any SQLExecutor) async throws -> WebhookMessage? {
        try await tx.queryFirst("SELECT * FROM \(T.webhookMessages) WHERE id = \(id)").map(decode)
    }

    func decode(_ row: SQLRow) throws -> WebhookMessage {
        WebhookMessage(
            id: try row.get("id"), endpointId: try row.get("endpoint_id"), eventType: try row.get("event_type"), eventId: try row.get("event_id"),
            status: try row.get("status"), attempts: try row.get("attempts"), nextAttemptAt: try row.get("next_attempt_at"),
            lastStatus: try row.get("last_status"), lastError: try row.get("last_error"), createdAt: try row.get("created_at"),
            deliveredAt: try row.get("delivered_at"), attemptLog: [], payload: try row.get("payload")
        )
    }

    func enqueue(_ messageId: String, organizationId: UUID, at date: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.webhookQueue) (message_id, organization_id, next_attempt_at) VALUES (\(messageId), \(organizationId), \(date))
            ON CONFLICT (message_id) DO UPDATE SET next_attempt_at = excluded.next_attempt_at, lease_until = NULL
            """
        )
    }
}

/// The events customers can subscribe to, and the body each sends.
enum OutboundEvents {
    static let types: [String] = [
        ActivityCaptured.eventType, NotificationPublished.eventType, NotificationPaused.eventType, WebhookEndpointDisabled.eventType,
    ]

    /// The public projection of an event: never an encrypted or personal field that is not meant for the customer's systems.
    static func data(for event: EventEnvelope) throws -> JSONValue {
        let raw = try JSONDecoder().decode(JSONValue.self, from: Data(event.data.utf8))
        guard event.type == ActivityCaptured.eventType, case .object(var fields) = raw else { return raw }
        fields["lastNameEncrypted"] = nil
        fields["emailEncrypted"] = nil
        return .object(fields)
    }

    /// `{"type", "timestamp", "data"}`, the payload shape the Standard Webhooks specification recommends.
    static func payload(for event: EventEnvelope) throws -> String {
        let body = JSONValue.object([
            "type": .string(event.type), "timestamp": .string(ISO8601.string(from: event.occurredAt)), "data": try data(for: event),
        ])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(body), as: UTF8.self)
    }

    static func messageId(endpoint: UUID, event: UUID) -> String {
        // Stable for an (endpoint, event) pair, so a redelivered event maps to the same message.
        "msg_" + String((endpoint.lowercased + event.lowercased).replacingOccurrences(of: "-", with: "").prefix(64))
    }
}

/// Turns subscribed events into messages, one per matching endpoint.
struct OutboundFanout: EventConsumer {
    let group = "integrations.outbound"
    let eventTypes = Set(OutboundEvents.types)
    let endpoints: EndpointStore
    let messages = MessageStore()
    let dispatcher: WebhookDispatcher

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        guard let siteId = event.siteId, let organizationId = event.organizationId else { return }
        let targets = try await endpoints.list(siteId: siteId, in: tx).filter { $0.status == "enabled" && $0.eventTypes.contains(event.type) }
        guard !targets.isEmpty else { return }
        let payload = try OutboundEvents.payload(for: event)
        let now = Date()
        for endpoint in targets {
            let id = OutboundEvents.messageId(endpoint: endpoint.id, event: event.id)
            let inserted = try await tx.query(
                """
                INSERT INTO \(IntegrationTables.webhookMessages) (id, endpoint_id, site_id, organization_id, event_type, event_id, payload, status,
                    next_attempt_at, created_at)
                VALUES (\(id), \(endpoint.id), \(siteId), \(organizationId), \(event.type), \(event.id), \(payload), 'pending', \(now), \(now))
                ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id
                """
            )
            if !inserted.isEmpty { try await messages.enqueue(id, organizationId: organizationId, at: now, in: tx) }
        }
    }

    func didCommit(_ event: EventEnvelope) async {
        dispatcher.wake()
    }
}

/// Delivers due messages: signs, sends with a bounded timeout after checking the resolved address, records
/// the attempt, and schedules the next one or gives up. Deliveries are rows, so they survive restarts.
final class WebhookDispatcher: Service, Sendable {
    let database: any Database
    let bus: any EventBus
    let http: HTTPClient
    let outbound: OutboundGuard
    let endpoints: EndpointStore
    let messages = MessageStore()
    let policy: WebhookRetryPolicy
    let logger: Logger
    let signal = WakeSignal()
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
            try await tx.query(
                """
                UPDATE \(IntegrationTables.webhookQueue) SET lease_until = \(now.addingTimeInterval(120))
                WHERE message_id IN (
                    SELECT message_id FROM \(IntegrationTables.webhookQueue)
                    WHERE next_attempt_at <= \(now) AND (lease_until IS NULL OR lease_until < \(now))
                    ORDER BY next_attempt_at LIMIT \(Self.parallel * 4))
                RETURNING message_id, organization_id
                """
            ).map { (try $0.get("message_id", as: String.self), try $0.get("organization_id", as: UUID.self)) }
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
                try await tx.execute("DELETE FROM \(IntegrationTables.webhookQueue) WHERE message_id = \(messageId)")
                return nil
            }
            return (message, endpoint)
        }
        guard let (message, endpoint) = loaded else { return }
        guard endpoint.status == "enabled", message.status == "pending" else {
            try await database.transaction(scope) { tx in
                if message.status == "pending" {
                    try await tx.execute(
                        "UPDATE \(IntegrationTables.webhookMessages) SET status = 'failed', last_error = 'the endpoint is disabled' WHERE id = \(messageId)"
                    )
                }
                try await tx.execute("DELETE FROM \(IntegrationTables.webhookQueue) WHERE message_id = \(messageId)")
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
            let response = try await http.execute(request, timeout: Self.timeout, logger: logger)
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
        let elapsed = ContinuousClock.now - started
        let duration = Int(elapsed.components.seconds * 1000) + Int(elapsed.components.attoseconds / 1_000_000_000_000_000)
        let attempts = message.attempts + 1
        var disabled: WebhookEndpointDisabled?
        try await database.transaction(scope) { tx in
            try await tx.execute(
                """
                INSERT INTO \(IntegrationTables.webhookAttempts) (id, message_id, organization_id, attempted_at, status_code, error, duration_ms)
                VALUES (\(UUID.v7()), \(messageId), \(organizationId), \(now), \(statusCode), \(failure.map { String($0.prefix(500)) }), \(duration))
                """
            )
            let table = IntegrationTables.webhookEndpoints
            if failure == nil {
                try await tx.execute(
                    """
                    UPDATE \(IntegrationTables.webhookMessages) SET status = 'delivered', attempts = \(attempts), last_status = \(statusCode),
                        last_error = NULL, delivered_at = \(now), next_attempt_at = NULL WHERE id = \(messageId)
                    """
                )
                try await tx.execute("DELETE FROM \(IntegrationTables.webhookQueue) WHERE message_id = \(messageId)")
                try await tx.execute("UPDATE \(table) SET consecutive_failures = 0 WHERE id = \(endpoint.id) AND consecutive_failures <> 0")
                return
            }
            if statusCode == 410 {
                // Gone: the receiver asks Herald to stop.
                disabled = WebhookEndpointDisabled(
                    endpointId: endpoint.id, siteId: endpoint.siteId, url: endpoint.url, reason: "the receiver answered 410 Gone")
            }
            let next = disabled == nil ? policy.delay(afterAttempts: attempts).map { max($0, min(retryAfter ?? 0, 86_400)) } : nil
            let status = next == nil ? (disabled == nil ? "dead" : "failed") : "pending"
            try await tx.execute(
                """
                UPDATE \(IntegrationTables.webhookMessages) SET status = \(status), attempts = \(attempts), last_status = \(statusCode),
                    last_error = \(failure.map { String($0.prefix(500)) }), next_attempt_at = \(next.map { now.addingTimeInterval($0) })
                WHERE id = \(messageId)
                """
            )
            if let next {
                try await messages.enqueue(messageId, organizationId: organizationId, at: now.addingTimeInterval(next), in: tx)
            } else {
                try await tx.execute("DELETE FROM \(IntegrationTables.webhookQueue) WHERE message_id = \(messageId)")
                // Counted in the row itself: concurrent deliveries to one endpoint must not lose a failure.
                let failures: Int =
                    try await tx.queryFirst(
                        "UPDATE \(table) SET consecutive_failures = consecutive_failures + 1 WHERE id = \(endpoint.id) RETURNING consecutive_failures"
                    )?.get("consecutive_failures") ?? 0
                if disabled == nil && failures >= policy.disableAfter {
                    disabled = WebhookEndpointDisabled(
                        endpointId: endpoint.id, siteId: endpoint.siteId, url: endpoint.url,
                        reason: "\(failures) messages in a row could not be delivered"
                    )
                }
            }
            if let disabled {
                let changed = try await tx.query(
                    """
                    UPDATE \(table) SET status = 'disabled', disabled_reason = \(disabled.reason), updated_at = \(now)
                    WHERE id = \(endpoint.id) AND status = 'enabled' RETURNING id
                    """
                )
                if !changed.isEmpty {
                    try await Outbox.append(disabled, organizationId: organizationId, siteId: endpoint.siteId, in: tx)
                }
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

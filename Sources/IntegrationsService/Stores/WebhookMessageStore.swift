import Foundation
import HeraldCore
import HeraldEvents
import HeraldStorage

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

/// Outbound messages, their attempts, and the queue of due messages the dispatcher claims across tenants.
struct WebhookMessageStore: Sendable {
    typealias T = IntegrationsTables

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

    /// Creates the message of an event for an endpoint once (a redelivered event maps to the same message);
    /// false when it already exists.
    func insert(
        _ id: String, endpointId: UUID, siteId: UUID, organizationId: UUID, event: EventEnvelope, payload: String, now: Date, in tx: any SQLExecutor
    ) async throws -> Bool {
        let inserted = try await tx.query(
            """
            INSERT INTO \(T.webhookMessages) (id, endpoint_id, site_id, organization_id, event_type, event_id, payload, status,
                next_attempt_at, created_at)
            VALUES (\(id), \(endpointId), \(siteId), \(organizationId), \(event.type), \(event.id), \(payload), 'pending', \(now), \(now))
            ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id
            """
        )
        return !inserted.isEmpty
    }

    /// Leases up to `limit` due messages for two minutes (outside any tenant: the queue holds ids and times only).
    func claimDue(now: Date, limit: Int, in tx: any SQLExecutor) async throws -> [(messageId: String, organizationId: UUID)] {
        try await tx.query(
            """
            UPDATE \(T.webhookQueue) SET lease_until = \(now.addingTimeInterval(120))
            WHERE message_id IN (
                SELECT message_id FROM \(T.webhookQueue)
                WHERE next_attempt_at <= \(now) AND (lease_until IS NULL OR lease_until < \(now))
                ORDER BY next_attempt_at LIMIT \(limit))
            RETURNING message_id, organization_id
            """
        ).map { (try $0.get("message_id", as: String.self), try $0.get("organization_id", as: UUID.self)) }
    }

    /// Takes a message off the queue.
    func dequeue(_ messageId: String, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.webhookQueue) WHERE message_id = \(messageId)")
    }

    /// Gives up on a pending message whose endpoint was disabled.
    func failForDisabledEndpoint(_ messageId: String, in tx: any SQLExecutor) async throws {
        try await tx.execute("UPDATE \(T.webhookMessages) SET status = 'failed', last_error = 'the endpoint is disabled' WHERE id = \(messageId)")
    }

    func recordAttempt(
        _ messageId: String, organizationId: UUID, at now: Date, statusCode: Int?, error: String?, durationMs: Int, in tx: any SQLExecutor
    ) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.webhookAttempts) (id, message_id, organization_id, attempted_at, status_code, error, duration_ms)
            VALUES (\(UUID.v7()), \(messageId), \(organizationId), \(now), \(statusCode), \(error), \(durationMs))
            """
        )
    }

    func markDelivered(_ messageId: String, attempts: Int, statusCode: Int?, at now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.webhookMessages) SET status = 'delivered', attempts = \(attempts), last_status = \(statusCode),
                last_error = NULL, delivered_at = \(now), next_attempt_at = NULL WHERE id = \(messageId)
            """
        )
    }

    /// Records a failed attempt: `pending` with the next attempt's time, or `dead`/`failed` without one.
    func markFailed(
        _ messageId: String, status: String, attempts: Int, statusCode: Int?, error: String?, nextAttemptAt: Date?, in tx: any SQLExecutor
    ) async throws {
        try await tx.execute(
            """
            UPDATE \(T.webhookMessages) SET status = \(status), attempts = \(attempts), last_status = \(statusCode),
                last_error = \(error), next_attempt_at = \(nextAttemptAt)
            WHERE id = \(messageId)
            """
        )
    }

    /// Makes a dead or failed message pending again, due now.
    func resend(_ messageId: String, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.webhookMessages) SET status = 'pending', attempts = 0, next_attempt_at = \(now)
            WHERE id = \(messageId)
            """
        )
    }
}

import Foundation
import HeraldCore
import HeraldSecurity
import HeraldStorage

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

/// Customers' webhook endpoints (and Zapier's REST hooks). Signing secrets are one encrypted JSON document each.
struct EndpointStore: Sendable {
    let cipher: FieldCipher
    typealias T = IntegrationsTables

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

    /// Every endpoint of an organization's sites, for events about the organization as a whole (billing).
    func list(organizationId: UUID, in tx: any SQLExecutor) async throws -> [WebhookEndpoint] {
        try await tx.query("SELECT * FROM \(T.webhookEndpoints) WHERE organization_id = \(organizationId) ORDER BY created_at, id").map(decode)
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

    /// A delivered message ends an endpoint's run of failures.
    func resetFailures(_ endpointId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            "UPDATE \(T.webhookEndpoints) SET consecutive_failures = 0 WHERE id = \(endpointId) AND consecutive_failures <> 0"
        )
    }

    /// Counts a message that could not be delivered and returns the endpoint's failures in a row. Counted in the
    /// row itself: concurrent deliveries to one endpoint must not lose a failure.
    func countFailure(_ endpointId: UUID, in tx: any SQLExecutor) async throws -> Int {
        try await tx.queryFirst(
            """
            UPDATE \(T.webhookEndpoints) SET consecutive_failures = consecutive_failures + 1 WHERE id = \(endpointId)
            RETURNING consecutive_failures
            """
        )?.get("consecutive_failures") ?? 0
    }

    /// Disables an enabled endpoint; false when it was already disabled (or gone).
    func disable(_ endpointId: UUID, reason: String, now: Date, in tx: any SQLExecutor) async throws -> Bool {
        let changed = try await tx.query(
            """
            UPDATE \(T.webhookEndpoints) SET status = 'disabled', disabled_reason = \(reason), updated_at = \(now)
            WHERE id = \(endpointId) AND status = 'enabled' RETURNING id
            """
        )
        return !changed.isEmpty
    }
}

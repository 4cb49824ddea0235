import Foundation
import HeraldCore
import HeraldSecurity
import HeraldStorage

/// Integrations and their routing tables. Secrets are one encrypted JSON document per integration.
struct IntegrationStore: Sendable {
    let cipher: FieldCipher
    typealias T = IntegrationsTables

    func sealed(_ secrets: IntegrationSecrets, id: UUID) throws -> [UInt8] {
        try cipher.encrypt(String(decoding: try JSONEncoder.herald.encode(secrets), as: UTF8.self), context: "integrations.secrets:\(id.lowercased)")
    }

    func insert(_ integration: Integration, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.integrations) (id, site_id, organization_id, type, name, status, config, secrets, created_at, updated_at)
            VALUES (\(integration.id), \(integration.siteId), \(integration.organizationId), \(integration.type.rawValue), \(integration.name),
                \(integration.status), \(try SQLJSON(encoding: integration.config)), \(try sealed(integration.secrets, id: integration.id)),
                \(integration.createdAt), \(integration.updatedAt))
            """
        )
        try await tx.execute(
            """
            INSERT INTO \(T.hookRoutes) (token_hash, integration_id, site_id, organization_id)
            VALUES (\(SecretToken.hash(integration.secrets.hookToken)), \(integration.id), \(integration.siteId), \(integration.organizationId))
            """
        )
        try await saveShopRoute(integration, in: tx)
    }

    func update(_ integration: Integration, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.integrations) SET name = \(integration.name), status = \(integration.status),
                config = \(try SQLJSON(encoding: integration.config)), secrets = \(try sealed(integration.secrets, id: integration.id)),
                updated_at = \(integration.updatedAt)
            WHERE id = \(integration.id) AND site_id = \(integration.siteId)
            """
        )
        try await saveShopRoute(integration, in: tx)
    }

    private func saveShopRoute(_ integration: Integration, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.shopRoutes) WHERE integration_id = \(integration.id)")
        if integration.type == .shopify, let shop = integration.config.shopDomain {
            try await tx.execute(
                """
                INSERT INTO \(T.shopRoutes) (shop_domain, integration_id, site_id, organization_id)
                VALUES (\(shop), \(integration.id), \(integration.siteId), \(integration.organizationId))
                """
            )
        }
    }

    func delete(_ integration: Integration, in tx: any SQLExecutor) async throws {
        for table in [T.hookRoutes, T.shopRoutes, T.oauthStates] {
            try await tx.execute("DELETE FROM \(table) WHERE integration_id = \(integration.id)")
        }
        try await tx.execute("DELETE FROM \(T.integrations) WHERE id = \(integration.id) AND site_id = \(integration.siteId)")
    }

    func find(_ id: UUID, siteId: UUID, in tx: any SQLExecutor) async throws -> Integration? {
        try await tx.queryFirst("SELECT * FROM \(T.integrations) WHERE id = \(id) AND site_id = \(siteId)").map(decode)
    }

    func find(_ id: UUID, in tx: any SQLExecutor) async throws -> Integration? {
        try await tx.queryFirst("SELECT * FROM \(T.integrations) WHERE id = \(id)").map(decode)
    }

    func list(siteId: UUID, in tx: any SQLExecutor) async throws -> [Integration] {
        try await tx.query("SELECT * FROM \(T.integrations) WHERE site_id = \(siteId) ORDER BY created_at, id").map(decode)
    }

    /// The integration behind an inbound URL token (outside any tenant).
    func route(token: String, in tx: any SQLExecutor) async throws -> (integrationId: UUID, siteId: UUID, organizationId: UUID)? {
        guard
            let row = try await tx.queryFirst(
                "SELECT integration_id, site_id, organization_id FROM \(T.hookRoutes) WHERE token_hash = \(SecretToken.hash(token))"
            )
        else { return nil }
        return (try row.get("integration_id"), try row.get("site_id"), try row.get("organization_id"))
    }

    /// The integration connected to a Shopify shop (outside any tenant: the app's install request names only the shop).
    func route(shop: String, in tx: any SQLExecutor) async throws -> (integrationId: UUID, organizationId: UUID)? {
        guard let row = try await tx.queryFirst("SELECT integration_id, organization_id FROM \(T.shopRoutes) WHERE shop_domain = \(shop)") else {
            return nil
        }
        return (try row.get("integration_id"), try row.get("organization_id"))
    }

    /// The organization of an integration, from its routing row (outside any tenant).
    func organization(of integrationId: UUID, in tx: any SQLExecutor) async throws -> UUID? {
        try await tx.queryFirst("SELECT organization_id FROM \(T.hookRoutes) WHERE integration_id = \(integrationId)")?.get("organization_id")
    }

    func saveHealth(_ integration: Integration, in tx: any SQLExecutor) async throws {
        let health = integration.health
        try await tx.execute(
            """
            UPDATE \(T.integrations) SET breaker_state = \(health.circuit), consecutive_failures = \(health.consecutiveFailures),
                breaker_opened_at = \(health.openedAt), last_error = \(health.lastError), last_success_at = \(health.lastSuccessAt),
                last_failure_at = \(health.lastFailureAt)
            WHERE id = \(integration.id)
            """
        )
    }

    func decode(_ row: SQLRow) throws -> Integration {
        let id: UUID = try row.get("id")
        let typeText: String = try row.get("type")
        let configText: String = try row.get("config")
        let secretsText = try cipher.decrypt(try row.get("secrets"), context: "integrations.secrets:\(id.lowercased)")
        return Integration(
            id: id,
            siteId: try row.get("site_id"),
            organizationId: try row.get("organization_id"),
            type: IntegrationType(rawValue: typeText) ?? .webhook,
            name: try row.get("name"),
            status: try row.get("status"),
            config: try JSONDecoder.herald.decode(IntegrationConfig.self, from: Data(configText.utf8)),
            secrets: try JSONDecoder.herald.decode(IntegrationSecrets.self, from: Data(secretsText.utf8)),
            health: Integration.Health(
                circuit: try row.get("breaker_state"),
                consecutiveFailures: try row.get("consecutive_failures"),
                openedAt: try row.get("breaker_opened_at"),
                lastError: try row.get("last_error"),
                lastSuccessAt: try row.get("last_success_at"),
                lastFailureAt: try row.get("last_failure_at")
            ),
            createdAt: try row.get("created_at"),
            updatedAt: try row.get("updated_at")
        )
    }
}

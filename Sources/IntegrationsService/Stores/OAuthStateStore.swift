import Foundation
import HeraldCore
import HeraldSecurity
import HeraldStorage

/// Shopify OAuth `state` nonces: stored hashed, single use, resolved before the tenant is known.
struct OAuthStateStore: Sendable {
    typealias T = IntegrationsTables

    /// Stores a new state for an integration (and forgets expired ones).
    func insert(_ state: String, for integration: Integration, expiresAt: Date, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.oauthStates) WHERE expires_at < \(now)")
        try await tx.execute(
            """
            INSERT INTO \(T.oauthStates) (state_hash, integration_id, site_id, organization_id, expires_at)
            VALUES (\(SecretToken.hash(state)), \(integration.id), \(integration.siteId), \(integration.organizationId), \(expiresAt))
            """
        )
    }

    /// Uses a state up: the integration it was issued for, or nil when it is unknown, used or expired.
    func claim(_ state: String, now: Date, in tx: any SQLExecutor) async throws -> (integrationId: UUID, organizationId: UUID)? {
        let rows = try await tx.query(
            """
            DELETE FROM \(T.oauthStates) WHERE state_hash = \(SecretToken.hash(state)) AND expires_at > \(now)
            RETURNING integration_id, organization_id
            """
        )
        guard let row = rows.first else { return nil }
        return (try row.get("integration_id"), try row.get("organization_id"))
    }
}

import Foundation
import HeraldCore
import HeraldHTTP
import HeraldSecurity
import HeraldStorage

struct Site: Sendable {
    var id: UUID
    var organizationId: UUID
    var name: String
    var domain: String
    var timezone: String
    var publicKey: String
    var createdAt: Date
    var updatedAt: Date
    var keysRotatedAt: Date
}

/// Sites and their keys. The public key is stored as is (it is published in every page); the secret key only
/// as a SHA-256 hash in the site directory, which resolves a key to its site before the tenant is known.
struct SiteStore: Sendable {
    typealias T = UsersTables

    func insert(_ site: Site, secretKey: String, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.sites) (id, organization_id, name, domain, timezone, public_key, created_at, updated_at, keys_rotated_at)
            VALUES (\(site.id), \(site.organizationId), \(site.name), \(site.domain), \(site.timezone), \(site.publicKey),
                    \(site.createdAt), \(site.updatedAt), \(site.keysRotatedAt))
            """
        )
        try await tx.execute(
            """
            INSERT INTO \(T.siteDirectory) (site_id, organization_id, secret_hash)
            VALUES (\(site.id), \(site.organizationId), \(SecretToken.hash(secretKey)))
            """
        )
    }

    func find(_ id: UUID, organizationId: UUID, in tx: any SQLExecutor) async throws -> Site? {
        try await tx.queryFirst("SELECT * FROM \(T.sites) WHERE id = \(id) AND organization_id = \(organizationId)").map(decode)
    }

    func list(organizationId: UUID, in tx: any SQLExecutor) async throws -> [Site] {
        try await tx.query("SELECT * FROM \(T.sites) WHERE organization_id = \(organizationId) ORDER BY created_at, id").map(decode)
    }

    func update(_ site: Site, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.sites) SET name = \(site.name), domain = \(site.domain), timezone = \(site.timezone), updated_at = \(site.updatedAt)
            WHERE id = \(site.id) AND organization_id = \(site.organizationId)
            """
        )
    }

    func delete(_ site: Site, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.siteDirectory) WHERE site_id = \(site.id)")
        try await tx.execute("DELETE FROM \(T.sites) WHERE id = \(site.id) AND organization_id = \(site.organizationId)")
    }

    func rotateSecret(_ site: Site, to secretKey: String, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute("UPDATE \(T.siteDirectory) SET secret_hash = \(SecretToken.hash(secretKey)) WHERE site_id = \(site.id)")
        try await tx.execute("UPDATE \(T.sites) SET keys_rotated_at = \(now), updated_at = \(now) WHERE id = \(site.id)")
    }

    /// Routing lookups: which organization owns a site, and which site a secret key belongs to.
    func route(siteId: UUID, in tx: any SQLExecutor) async throws -> SiteRef? {
        guard let row = try await tx.queryFirst("SELECT organization_id FROM \(T.siteDirectory) WHERE site_id = \(siteId)") else {
            return nil
        }
        return SiteRef(siteId: siteId, organizationId: try row.get("organization_id"))
    }

    func route(secretKey: String, in tx: any SQLExecutor) async throws -> SiteRef? {
        guard
            let row = try await tx.queryFirst(
                "SELECT site_id, organization_id FROM \(T.siteDirectory) WHERE secret_hash = \(SecretToken.hash(secretKey))"
            )
        else { return nil }
        return SiteRef(siteId: try row.get("site_id"), organizationId: try row.get("organization_id"))
    }

    func decode(_ row: SQLRow) throws -> Site {
        Site(
            id: try row.get("id"),
            organizationId: try row.get("organization_id"),
            name: try row.get("name"),
            domain: try row.get("domain"),
            timezone: try row.get("timezone"),
            publicKey: try row.get("public_key"),
            createdAt: try row.get("created_at"),
            updatedAt: try row.get("updated_at"),
            keysRotatedAt: try row.get("keys_rotated_at")
        )
    }
}

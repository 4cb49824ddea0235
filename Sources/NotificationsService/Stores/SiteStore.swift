import Foundation
import HeraldCore
import HeraldStorage

/// The Notifications service's copy of a site.
struct SiteRecord: Sendable {
    var siteId: UUID
    var organizationId: UUID
    var name: String
    var domain: String
    var timezone: String
    var publicKey: String
    var privacy: PrivacySettings
}

/// The service's copy of each site (kept from the Users service's events) and the public keys that route widget
/// requests to it before the tenant is known.
struct SiteStore: Sendable {
    typealias T = NotificationsTables

    /// Resolves a widget's public key (outside any tenant).
    func route(publicKey: String, in tx: any SQLExecutor) async throws -> (siteId: UUID, organizationId: UUID)? {
        guard let row = try await tx.queryFirst("SELECT site_id, organization_id FROM \(T.siteKeys) WHERE public_key = \(publicKey)") else {
            return nil
        }
        return (try row.get("site_id"), try row.get("organization_id"))
    }

    func find(_ siteId: UUID, in tx: any SQLExecutor) async throws -> SiteRecord? {
        guard let row = try await tx.queryFirst("SELECT * FROM \(T.sites) WHERE site_id = \(siteId)") else { return nil }
        let privacyText: String = try row.get("privacy")
        return SiteRecord(
            siteId: siteId,
            organizationId: try row.get("organization_id"),
            name: try row.get("name"),
            domain: try row.get("domain"),
            timezone: try row.get("timezone"),
            publicKey: try row.get("public_key"),
            privacy: (try? JSONDecoder.herald.decode(PrivacySettings.self, from: Data(privacyText.utf8))) ?? PrivacySettings()
        )
    }

    func setPrivacy(_ privacy: PrivacySettings, siteId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute("UPDATE \(T.sites) SET privacy = \(try SQLJSON(encoding: privacy)), updated_at = \(Date()) WHERE site_id = \(siteId)")
    }

    /// The organization that owns a site, from the tenant-free key table.
    func routeSite(_ siteId: UUID, in tx: any SQLExecutor) async throws -> UUID? {
        try await tx.queryFirst("SELECT organization_id FROM \(T.siteKeys) WHERE site_id = \(siteId)")?.get("organization_id")
    }

    /// Creates or updates the copy of a site from the Users service's events, and its public key's route.
    func upsert(
        _ siteId: UUID, _ organizationId: UUID, name: String, domain: String, timezone: String, publicKey: String, in tx: any SQLExecutor
    ) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.sites) (site_id, organization_id, name, domain, timezone, public_key, updated_at)
            VALUES (\(siteId), \(organizationId), \(name), \(domain), \(timezone), \(publicKey), \(Date()))
            ON CONFLICT (site_id) DO UPDATE SET name = excluded.name, domain = excluded.domain, timezone = excluded.timezone,
                public_key = excluded.public_key, updated_at = excluded.updated_at
            """
        )
        try await tx.execute("DELETE FROM \(T.siteKeys) WHERE site_id = \(siteId)")
        try await tx.execute(
            "INSERT INTO \(T.siteKeys) (public_key, site_id, organization_id) VALUES (\(publicKey), \(siteId), \(organizationId))"
        )
    }

    /// Forgets a deleted site and its public key.
    func delete(_ siteId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.siteKeys) WHERE site_id = \(siteId)")
        try await tx.execute("DELETE FROM \(T.sites) WHERE site_id = \(siteId)")
    }
}

import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldStorage

/// What visitors may learn about the people behind activities. Last names, emails and IP addresses are never
/// shown whatever the setting.
public struct PrivacySettings: Codable, Sendable, Equatable {
    public enum Names: String, APIEnum {
        /// "Sarah" (the first word of the first name).
        case firstName = "first_name"
        /// "Someone".
        case anonymous
    }

    public enum Location: String, APIEnum { case city, region, country, none }

    public var names: Names = .firstName
    public var location: Location = .city

    public init() {}

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        names = try container.decodeIfPresent(Names.self, forKey: .names) ?? .firstName
        location = try container.decodeIfPresent(Location.self, forKey: .location) ?? .city
    }

    enum CodingKeys: String, CodingKey { case names, location }
}

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

/// Keeps the service's copy of sites in step with the Users service's site events.
struct SiteDirectoryConsumer: EventConsumer {
    let group = "notifications.sites"
    let eventTypes: Set<String> = [SiteCreated.eventType, SiteUpdated.eventType, SiteDeleted.eventType, SiteKeysRotated.eventType]
    let feeds: FeedCache
    typealias T = NotificationTables

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        switch event.type {
        case SiteCreated.eventType:
            let site = try event.decode(SiteCreated.self)
            try await upsert(site.siteId, site.organizationId, site.name, site.domain, site.timezone, site.publicKey, in: tx)
        case SiteUpdated.eventType:
            let site = try event.decode(SiteUpdated.self)
            try await upsert(site.siteId, site.organizationId, site.name, site.domain, site.timezone, site.publicKey, in: tx)
        case SiteDeleted.eventType:
            let site = try event.decode(SiteDeleted.self)
            try await tx.execute("DELETE FROM \(T.siteKeys) WHERE site_id = \(site.siteId)")
            try await tx.execute("DELETE FROM \(T.sites) WHERE site_id = \(site.siteId)")
        default:
            break
        }
    }

    func didCommit(_ event: EventEnvelope) async {
        if let siteId = event.siteId { await feeds.invalidate(siteId: siteId, reason: .siteChanged) }
    }

    private func upsert(
        _ siteId: UUID, _ organizationId: UUID, _ name: String, _ domain: String, _ timezone: String, _ publicKey: String, in tx: any SQLExecutor
    )
        async throws
    {
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
}

struct SiteStore: Sendable {
    typealias T = NotificationTables

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
}

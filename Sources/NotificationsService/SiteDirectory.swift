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

/// Keeps Billing's delivery decisions: a paused organization's feeds carry no notifications (and say why), and
/// publishing past the plan's active-campaign quota is refused.
struct DeliveryHoldConsumer: EventConsumer {
    let group = "notifications.delivery"
    let eventTypes: Set<String> = [DeliveryStatusChanged.eventType]
    let feeds: FeedCache
    let holds = DeliveryHoldStore()

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        let change = try event.decode(DeliveryStatusChanged.self)
        try await holds.apply(
            organizationId: change.organizationId,
            DeliveryHold(paused: change.paused, reason: change.reason, maxActiveCampaigns: change.maxActiveCampaigns), decidedAt: change.decidedAt,
            in: tx
        )
    }

    func didCommit(_ event: EventEnvelope) async {
        if let organizationId = event.organizationId { await feeds.invalidate(organizationId: organizationId) }
    }
}

/// Keeps the service's copy of sites in step with the Users service's site events.
struct SiteDirectoryConsumer: EventConsumer {
    let group = "notifications.sites"
    let eventTypes: Set<String> = [SiteCreated.eventType, SiteUpdated.eventType, SiteDeleted.eventType, SiteKeysRotated.eventType]
    let feeds: FeedCache
    let sites = SiteStore()

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        switch event.type {
        case SiteCreated.eventType:
            let site = try event.decode(SiteCreated.self)
            try await sites.upsert(
                site.siteId, site.organizationId, name: site.name, domain: site.domain, timezone: site.timezone, publicKey: site.publicKey, in: tx
            )
        case SiteUpdated.eventType:
            let site = try event.decode(SiteUpdated.self)
            try await sites.upsert(
                site.siteId, site.organizationId, name: site.name, domain: site.domain, timezone: site.timezone, publicKey: site.publicKey, in: tx
            )
        case SiteDeleted.eventType:
            let site = try event.decode(SiteDeleted.self)
            try await sites.delete(site.siteId, in: tx)
        default:
            break
        }
    }

    func didCommit(_ event: EventEnvelope) async {
        if let siteId = event.siteId { await feeds.invalidate(siteId: siteId, reason: .siteChanged) }
    }
}

import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldStorage

/// Keeps Analytics' copies of sites (their time zones) and A/B tests (their variants and weights) in step
/// with the Users and Notifications events, in batches like every Analytics consumer.
struct CatalogConsumer: BatchEventConsumer {
    let group = "analytics.catalog"
    let eventTypes: Set<String> = [
        SiteCreated.eventType, SiteUpdated.eventType, SiteDeleted.eventType, NotificationCreated.eventType, NotificationUpdated.eventType,
        NotificationPublished.eventType, NotificationPaused.eventType, NotificationDeleted.eventType,
    ]
    let store = CatalogStore()

    func handle(batch events: [EventEnvelope], in tx: any SQLExecutor) async throws {
        for event in events {
            guard let organizationId = event.organizationId else { continue }
            try await tx.setTenant(.organization(organizationId))
            switch event.type {
            case SiteCreated.eventType:
                let site = try event.decode(SiteCreated.self)
                try await store.upsertSite(site.siteId, organizationId, name: site.name, timezone: site.timezone, in: tx)
            case SiteUpdated.eventType:
                let site = try event.decode(SiteUpdated.self)
                try await store.upsertSite(site.siteId, organizationId, name: site.name, timezone: site.timezone, in: tx)
            case SiteDeleted.eventType:
                try await store.deleteSite(try event.decode(SiteDeleted.self).siteId, in: tx)
            case NotificationDeleted.eventType:
                try await store.deleteExperiment(try event.decode(NotificationDeleted.self).notification.notificationId, in: tx)
            case NotificationCreated.eventType:
                try await store.upsertExperiment(try event.decode(NotificationCreated.self).notification, organizationId, in: tx)
            case NotificationUpdated.eventType:
                try await store.upsertExperiment(try event.decode(NotificationUpdated.self).notification, organizationId, in: tx)
            case NotificationPublished.eventType:
                try await store.upsertExperiment(try event.decode(NotificationPublished.self).notification, organizationId, in: tx)
            case NotificationPaused.eventType:
                try await store.upsertExperiment(try event.decode(NotificationPaused.self).notification, organizationId, in: tx)
            default:
                continue
            }
        }
    }
}

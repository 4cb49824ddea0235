import Foundation
import HeraldContracts
import HeraldCore
import HeraldStorage

/// A site as Analytics knows it.
struct AnalyticsSite: Sendable {
    var siteId: UUID
    var name: String
    var timezone: String
}

/// A notification as Analytics knows it: its name and A/B arms (none without a test; the first is the control).
struct ExperimentRecord: Sendable {
    var notificationId: UUID
    var name: String
    var status: String
    var variants: [ExperimentVariant]
}

struct CatalogStore: Sendable {
    typealias T = AnalyticsTables

    func upsertSite(_ siteId: UUID, _ organizationId: UUID, name: String, timezone: String, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.sites) (site_id, organization_id, name, timezone, updated_at)
            VALUES (\(siteId), \(organizationId), \(name), \(timezone), \(Date()))
            ON CONFLICT (site_id) DO UPDATE SET name = excluded.name, timezone = excluded.timezone, updated_at = excluded.updated_at
            """
        )
        try await tx.execute(
            "INSERT INTO \(T.tenants) (organization_id, first_seen_at) VALUES (\(organizationId), \(Date())) ON CONFLICT (organization_id) DO NOTHING"
        )
    }

    func deleteSite(_ siteId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.sites) WHERE site_id = \(siteId)")
    }

    func site(_ siteId: UUID, in tx: any SQLExecutor) async throws -> AnalyticsSite? {
        guard let row = try await tx.queryFirst("SELECT name, timezone FROM \(T.sites) WHERE site_id = \(siteId)") else { return nil }
        return AnalyticsSite(siteId: siteId, name: try row.get("name"), timezone: try row.get("timezone"))
    }

    /// Records a notification with its A/B arms (none when it has no test).
    func upsertExperiment(_ notification: NotificationChanged, _ organizationId: UUID, in tx: any SQLExecutor) async throws {
        let variants = notification.variants ?? []
        try await tx.execute(
            """
            INSERT INTO \(T.notifications) (notification_id, site_id, organization_id, name, status, variants, updated_at)
            VALUES (\(notification.notificationId), \(notification.siteId), \(organizationId), \(notification.name), \(notification.status),
                    \(try SQLJSON(encoding: variants)), \(Date()))
            ON CONFLICT (notification_id) DO UPDATE SET name = excluded.name, status = excluded.status, variants = excluded.variants,
                updated_at = excluded.updated_at
            """
        )
    }

    func deleteExperiment(_ notificationId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.notifications) WHERE notification_id = \(notificationId)")
    }

    /// Every notification of a site Analytics has heard of, by name.
    func notifications(siteId: UUID, in tx: any SQLExecutor) async throws -> [ExperimentRecord] {
        try await tx.query("SELECT notification_id, name, status, variants FROM \(T.notifications) WHERE site_id = \(siteId) ORDER BY name")
            .map { row in
                let variants: String = try row.get("variants")
                return ExperimentRecord(
                    notificationId: try row.get("notification_id"), name: try row.get("name"), status: try row.get("status"),
                    variants: (try? JSONDecoder.herald.decode([ExperimentVariant].self, from: Data(variants.utf8))) ?? []
                )
            }
    }
}

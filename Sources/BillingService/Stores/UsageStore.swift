import Foundation
import HeraldCore
import HeraldStorage

/// What Billing meters, kept from other services' events: sites, published notifications, impressions per
/// period and reported storage; and the thresholds already announced.
struct UsageStore: Sendable {
    typealias T = BillingTables

    func addSite(_ siteId: UUID, organizationId: UUID, at: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.sites) (site_id, organization_id, created_at) VALUES (\(siteId), \(organizationId), \(at))
            ON CONFLICT (site_id) DO NOTHING
            """
        )
    }

    func removeSite(_ siteId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.sites) WHERE site_id = \(siteId)")
        try await tx.execute("DELETE FROM \(T.campaigns) WHERE site_id = \(siteId)")
    }

    func hasSite(_ siteId: UUID, in tx: any SQLExecutor) async throws -> Bool {
        try await tx.queryFirst("SELECT 1 AS present FROM \(T.sites) WHERE site_id = \(siteId)") != nil
    }

    /// Records whether a notification is published; a deleted one is forgotten.
    func setCampaign(_ notificationId: UUID, organizationId: UUID, siteId: UUID, published: Bool?, at: Date, in tx: any SQLExecutor) async throws {
        guard let published else {
            try await tx.execute("DELETE FROM \(T.campaigns) WHERE notification_id = \(notificationId)")
            return
        }
        try await tx.execute(
            """
            INSERT INTO \(T.campaigns) (notification_id, organization_id, site_id, published, updated_at)
            VALUES (\(notificationId), \(organizationId), \(siteId), \(published), \(at))
            ON CONFLICT (notification_id) DO UPDATE SET published = excluded.published, updated_at = excluded.updated_at
            """
        )
    }

    /// Adds impressions to a site's count for the period.
    func addImpressions(_ count: Int64, organizationId: UUID, siteId: UUID, periodStart: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.usage) AS u (organization_id, period_start, site_id, impressions)
            VALUES (\(organizationId), \(periodStart), \(siteId), \(count))
            ON CONFLICT (organization_id, period_start, site_id) DO UPDATE SET impressions = u.impressions + excluded.impressions
            """
        )
    }

    func setStorage(_ bytes: Int64, organizationId: UUID, service: String, measuredAt: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.storage) AS s (organization_id, service, bytes, measured_at) VALUES (\(organizationId), \(service), \(bytes), \(measuredAt))
            ON CONFLICT (organization_id, service) DO UPDATE SET bytes = excluded.bytes, measured_at = excluded.measured_at
            WHERE excluded.measured_at >= s.measured_at
            """
        )
    }

    /// The organization's usage of every metric in a period, in one statement: metering settles the account on every
    /// batch of beacons.
    func usage(organizationId: UUID, periodStart: Date, in tx: any SQLExecutor) async throws -> Usage {
        let row = try await tx.queryFirst(
            """
            SELECT
              (SELECT COALESCE(SUM(impressions), 0) FROM \(T.usage) WHERE organization_id = \(organizationId) AND period_start = \(periodStart)) AS impressions,
              (SELECT COUNT(*) FROM \(T.campaigns) WHERE organization_id = \(organizationId) AND published = \(true)) AS campaigns,
              (SELECT COUNT(*) FROM \(T.sites) WHERE organization_id = \(organizationId)) AS sites,
              (SELECT COALESCE(SUM(bytes), 0) FROM \(T.storage) WHERE organization_id = \(organizationId)) AS storage
            """
        )
        return Usage(
            impressions: try row?.get("impressions", as: Int64?.self) ?? 0, activeCampaigns: try row?.get("campaigns", as: Int64?.self) ?? 0,
            sites: try row?.get("sites", as: Int64?.self) ?? 0, storageBytes: try row?.get("storage", as: Int64?.self) ?? 0
        )
    }

    /// One site's share of the period: its impressions and published notifications.
    func siteUsage(siteId: UUID, periodStart: Date, in tx: any SQLExecutor) async throws -> (impressions: Int64, activeCampaigns: Int64) {
        let impressions = try await tx.queryFirst(
            "SELECT COALESCE(SUM(impressions), 0) AS n FROM \(T.usage) WHERE site_id = \(siteId) AND period_start = \(periodStart)"
        )?.get("n", as: Int64.self)
        let campaigns = try await tx.queryFirst(
            "SELECT COUNT(*) AS n FROM \(T.campaigns) WHERE site_id = \(siteId) AND published = \(true)"
        )?.get("n", as: Int64.self)
        return (impressions ?? 0, campaigns ?? 0)
    }

    /// Records that a threshold was announced; false when it already was this period.
    func recordAlert(
        organizationId: UUID, periodStart: Date, metric: UsageMetric, threshold: Int, usage: Int64, quota: Int64, at: Date, in tx: any SQLExecutor
    ) async throws -> Bool {
        let inserted = try await tx.query(
            """
            INSERT INTO \(T.alerts) (organization_id, period_start, metric, threshold, usage, quota, created_at)
            VALUES (\(organizationId), \(periodStart), \(metric.rawValue), \(threshold), \(usage), \(quota), \(at))
            ON CONFLICT (organization_id, period_start, metric, threshold) DO NOTHING
            RETURNING threshold
            """
        )
        return !inserted.isEmpty
    }

    /// The thresholds already announced this period, per metric.
    func announced(organizationId: UUID, periodStart: Date, in tx: any SQLExecutor) async throws -> Set<AlertKey> {
        let rows = try await tx.query(
            "SELECT metric, threshold FROM \(T.alerts) WHERE organization_id = \(organizationId) AND period_start = \(periodStart)"
        )
        return Set(try rows.map { AlertKey(metric: try $0.get("metric"), threshold: try $0.get("threshold")) })
    }

    func alerts(organizationId: UUID, periodStart: Date, in tx: any SQLExecutor) async throws -> [AlertRecord] {
        try await tx.query(
            """
            SELECT metric, threshold, usage, quota, created_at FROM \(T.alerts)
            WHERE organization_id = \(organizationId) AND period_start = \(periodStart) ORDER BY created_at, threshold
            """
        ).map {
            AlertRecord(
                metric: try $0.get("metric"), threshold: try $0.get("threshold"), usage: try $0.get("usage"), quota: try $0.get("quota"),
                createdAt: try $0.get("created_at")
            )
        }
    }
}

/// A threshold of a metric, announced once per period.
struct AlertKey: Hashable, Sendable {
    var metric: String
    var threshold: Int
}

/// An organization's usage in one period.
struct Usage: Sendable, Equatable {
    var impressions: Int64
    var activeCampaigns: Int64
    var sites: Int64
    var storageBytes: Int64

    func value(_ metric: UsageMetric) -> Int64 {
        switch metric {
        case .impressions: impressions
        case .activeCampaigns: activeCampaigns
        case .sites: sites
        case .storageBytes: storageBytes
        }
    }
}

struct AlertRecord: Sendable {
    var metric: String
    var threshold: Int
    var usage: Int64
    var quota: Int64
    var createdAt: Date
}

import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldModules
import HeraldSecurity
import HeraldStorage
import Hummingbird
import Logging

/// The Analytics service. Today: daily counters of widget interactions per notification and A/B variant,
/// from the beacons the Notifications service records. Funnels, cohorts, attribution and exports follow.
public struct AnalyticsService: HeraldModule {
    public static let name = "analytics"
    let database: any Database
    let access: AccessControl
    let logger: Logger

    public init(database: any Database, access: AccessControl, logger: Logger) {
        self.database = database
        self.access = access
        self.logger = logger
    }

    public var consumers: [any EventConsumer] { [BeaconCounter()] }

    public func addRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        router.get("sites/:siteId/analytics", use: summary)
    }

    static let dailyCounts = Table("analytics", "daily_counts")
    /// Stands for "none" in key columns (a conversion not attributed to a notification, a notification without variants).
    static let none = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

    public static let migrations = MigrationSet(
        owner: "analytics",
        migrations: [
            AnalyticsMigrations.v1
        ]
    )
}

/// Adds each beacon batch to the daily counters, in one upsert per (day, notification, variant).
struct BeaconCounter: EventConsumer {
    let group = "analytics.beacons"
    let eventTypes: Set<String> = [BeaconsRecorded.eventType]

    struct Key: Hashable {
        var day: String
        var notification: UUID
        var variant: UUID
    }

    struct Counts {
        var impressions = 0, hovers = 0, clicks = 0, closes = 0, conversions = 0
    }

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        guard let organizationId = event.organizationId else { return }
        let batch = try event.decode(BeaconsRecorded.self)
        var totals: [Key: Counts] = [:]
        for beacon in batch.beacons {
            let key = Key(
                day: AnalyticsDay.string(beacon.occurredAt),
                notification: beacon.notificationId ?? AnalyticsService.none,
                variant: beacon.variantId ?? AnalyticsService.none
            )
            switch beacon.type {
            case "impression": totals[key, default: Counts()].impressions += 1
            case "hover": totals[key, default: Counts()].hovers += 1
            case "click": totals[key, default: Counts()].clicks += 1
            case "close": totals[key, default: Counts()].closes += 1
            case "conversion": totals[key, default: Counts()].conversions += 1
            default: continue
            }
        }
        for (key, counts) in totals {
            let day: SQL = tx.dialect == .postgres ? "CAST(\(key.day) AS DATE)" : "\(key.day)"
            try await tx.execute(
                """
                INSERT INTO \(AnalyticsService.dailyCounts) AS c (site_id, organization_id, day, notification_id, variant_id,
                    impressions, hovers, clicks, closes, conversions)
                VALUES (\(batch.siteId), \(organizationId), \(day), \(key.notification), \(key.variant),
                    \(counts.impressions), \(counts.hovers), \(counts.clicks), \(counts.closes), \(counts.conversions))
                ON CONFLICT (site_id, day, notification_id, variant_id) DO UPDATE SET
                    impressions = c.impressions + excluded.impressions, hovers = c.hovers + excluded.hovers,
                    clicks = c.clicks + excluded.clicks, closes = c.closes + excluded.closes,
                    conversions = c.conversions + excluded.conversions
                """
            )
        }
    }
}

/// Days are UTC calendar days, written `YYYY-MM-DD`.
enum AnalyticsDay {
    static func string(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year ?? 1970, parts.month ?? 1, parts.day ?? 1)
    }

    static func parse(_ text: String) -> Date? {
        guard text.count == 10, let date = ISO8601.date(from: text + "T00:00:00Z"), string(date) == text else { return nil }
        return date
    }
}

/// The service's migrations, one file each under `Migrations/`.
enum AnalyticsMigrations {}

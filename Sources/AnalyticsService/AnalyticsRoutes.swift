import Foundation
import HeraldCore
import HeraldHTTP
import HeraldSecurity
import HeraldStorage
import Hummingbird

struct MetricCounts: Encodable, Sendable {
    var impressions = 0
    var hovers = 0
    var clicks = 0
    var closes = 0
    var conversions = 0
    /// clicks ÷ impressions, 0 without impressions.
    var clickThroughRate: Double { impressions == 0 ? 0 : Double(clicks) / Double(impressions) }

    mutating func add(_ other: MetricCounts) {
        impressions += other.impressions
        hovers += other.hovers
        clicks += other.clicks
        closes += other.closes
        conversions += other.conversions
    }

    enum CodingKeys: String, CodingKey { case impressions, hovers, clicks, closes, conversions, clickThroughRate }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(impressions, forKey: .impressions)
        try container.encode(hovers, forKey: .hovers)
        try container.encode(clicks, forKey: .clicks)
        try container.encode(closes, forKey: .closes)
        try container.encode(conversions, forKey: .conversions)
        try container.encode((clickThroughRate * 10_000).rounded() / 10_000, forKey: .clickThroughRate)
    }
}

struct VariantSummary: Encodable, Sendable {
    var variantId: UUID
    var metrics: MetricCounts
}

struct NotificationSummary: Encodable, Sendable {
    var notificationId: UUID
    var metrics: MetricCounts
    var variants: [VariantSummary]
}

struct AnalyticsSummary: Encodable, Sendable {
    var siteId: UUID
    var from: String
    var to: String
    var totals: MetricCounts
    var notifications: [NotificationSummary]
    /// Conversions tracked while no notification had been seen.
    var unattributedConversions: Int
}

extension AnalyticsService {
    static let maxRangeDays = 366

    /// Impressions, hovers, clicks, closes and conversions per notification and per variant, between two UTC
    /// days inclusive (default: the last 30 days).
    @Sendable func summary(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<AnalyticsSummary> {
        let siteId = try context.uuidParameter("siteId", resource: "Site")
        let grant = try await access.site(siteId, .analyticsRead, context: context)
        var validator = Validator()
        let today = AnalyticsDay.parse(AnalyticsDay.string(Date())) ?? Date()
        func day(_ name: String, default value: Date) -> Date {
            guard let text = request.uri.queryParameters.get(name) else { return value }
            guard let date = AnalyticsDay.parse(text) else {
                validator.add(name, "must be a date like 2026-11-29")
                return value
            }
            return date
        }
        let to = day("to", default: today)
        let from = day("from", default: to.addingTimeInterval(-29 * 86_400))
        if from > to { validator.add("from", "must not be after to") }
        if to.timeIntervalSince(from) > Double(Self.maxRangeDays) * 86_400 {
            validator.add("from", "must be at most \(Self.maxRangeDays) days before to")
        }
        try validator.check()
        let (fromText, toText) = (AnalyticsDay.string(from), AnalyticsDay.string(to))

        let rows = try await database.transaction(grant.scope) { tx in
            let range: SQL =
                tx.dialect == .postgres
                ? "day BETWEEN CAST(\(fromText) AS DATE) AND CAST(\(toText) AS DATE)"
                : "day BETWEEN \(fromText) AND \(toText)"
            return try await tx.query(
                """
                SELECT notification_id, variant_id, SUM(impressions) AS impressions, SUM(hovers) AS hovers, SUM(clicks) AS clicks,
                    SUM(closes) AS closes, SUM(conversions) AS conversions
                FROM \(Self.dailyCounts) WHERE site_id = \(siteId) AND \(range)
                GROUP BY notification_id, variant_id
                """
            )
        }
        var totals = MetricCounts()
        var byNotification: [UUID: (MetricCounts, [VariantSummary])] = [:]
        var unattributed = 0
        for row in rows {
            let counts = MetricCounts(
                impressions: try row.get("impressions"), hovers: try row.get("hovers"), clicks: try row.get("clicks"),
                closes: try row.get("closes"), conversions: try row.get("conversions")
            )
            totals.add(counts)
            let notificationId: UUID = try row.get("notification_id")
            let variantId: UUID = try row.get("variant_id")
            guard notificationId != Self.none else {
                unattributed += counts.conversions
                continue
            }
            var entry = byNotification[notificationId] ?? (MetricCounts(), [])
            entry.0.add(counts)
            if variantId != Self.none { entry.1.append(VariantSummary(variantId: variantId, metrics: counts)) }
            byNotification[notificationId] = entry
        }
        let notifications = byNotification.map { id, entry in
            NotificationSummary(notificationId: id, metrics: entry.0, variants: entry.1.sorted { $0.variantId.lowercased < $1.variantId.lowercased })
        }.sorted { $0.notificationId.lowercased < $1.notificationId.lowercased }
        return JSONResponse(
            AnalyticsSummary(
                siteId: siteId, from: fromText, to: toText, totals: totals, notifications: notifications, unattributedConversions: unattributed)
        )
    }
}

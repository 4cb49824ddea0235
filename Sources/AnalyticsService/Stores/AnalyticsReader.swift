import Foundation
import HeraldContracts
import HeraldCore
import HeraldStorage

/// Rollup granularities. Minutes are UTC minutes; hours and days are the site's.
enum Granularity: String, Sendable, CaseIterable {
    case minute, hour, day
}

struct CounterFact: Sendable {
    var bucket: Int64
    var notificationId: UUID
    var variantId: UUID
    var counters: Counters
}

struct UniqueFact: Sendable {
    var day: Int
    var scope: String
    var visitors: Int
}

struct CohortFact: Sendable {
    var cohortWeek: Int
    var weekIndex: Int
    var newVisitors: Int
    var conversions: Int
    var value: Double
}

struct ConversionFact: Sendable {
    var atMillis: Int64
    var day: Int
    var goal: String?
    var value: Double?
    var notificationId: UUID?
    var variantId: UUID?
    var previousConversionAt: Int64?
    var touches: [Touch]
}

struct ExperimentFact: Sendable {
    var notificationId: UUID
    var variantId: UUID
    var exposures: Int
    var conversions: Int
}

/// The facts every report is computed from. Two implementations give the same answers: rollups in the
/// embedded store or PostgreSQL (``SQLAnalyticsReader``), and raw events in ClickHouse (``ClickHouseReader``).
protocol AnalyticsReader: Sendable {
    /// Counters per bucket, notification and variant, for buckets in `buckets` (inclusive).
    func counters(siteId: UUID, organizationId: UUID, granularity: Granularity, buckets: ClosedRange<Int64>) async throws -> [CounterFact]
    /// Unique visitors per day and scope for days in `days` (`yyyymmdd`, inclusive).
    func uniques(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> [UniqueFact]
    /// Visitors reaching each step in order, each step after the previous and within `window` of the first, per
    /// visitor and day.
    func funnel(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>, steps: [String], windowMillis: Int64) async throws -> [Int]
    func cohorts(siteId: UUID, organizationId: UUID, weeks: ClosedRange<Int>) async throws -> [CohortFact]
    /// Conversions that happened in `millis` (inclusive), oldest first, with their touches.
    func conversions(siteId: UUID, organizationId: UUID, millis: ClosedRange<Int64>) async throws -> [ConversionFact]
    func experiments(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> [ExperimentFact]
    /// Beacons from self-declared crawlers in `days`.
    func bots(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> Int
}

extension Touch {
    static func decodeList(_ text: String?) -> [Touch] {
        guard let text, let data = text.data(using: .utf8) else { return [] }
        return (try? JSONDecoder().decode([Touch].self, from: data)) ?? []
    }
}

/// Reports from the rollups of the embedded store or PostgreSQL.
struct SQLAnalyticsReader: AnalyticsReader {
    typealias T = AnalyticsTables
    let database: any Database

    func counters(siteId: UUID, organizationId: UUID, granularity: Granularity, buckets: ClosedRange<Int64>) async throws -> [CounterFact] {
        let table =
            switch granularity {
            case .minute: T.rollupMinute
            case .hour: T.rollupHour
            case .day: T.rollupDay
            }
        let rows = try await database.query(
            """
            SELECT bucket, notification_id, variant_id, pageviews, impressions, hovers, clicks, closes, conversions, conversion_value
            FROM \(table) WHERE site_id = \(siteId) AND bucket BETWEEN \(buckets.lowerBound) AND \(buckets.upperBound)
            """,
            scope: .organization(organizationId)
        )
        return try rows.map { row in
            CounterFact(
                bucket: try row.get("bucket"), notificationId: try row.get("notification_id"), variantId: try row.get("variant_id"),
                counters: Counters(
                    pageviews: try row.get("pageviews"), impressions: try row.get("impressions"), hovers: try row.get("hovers"),
                    clicks: try row.get("clicks"), closes: try row.get("closes"), conversions: try row.get("conversions"),
                    conversionValue: try row.get("conversion_value")
                )
            )
        }
    }

    func uniques(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> [UniqueFact] {
        let rows = try await database.query(
            "SELECT day, scope, visitors FROM \(T.uniquesDay) WHERE site_id = \(siteId) AND day BETWEEN \(days.lowerBound) AND \(days.upperBound)",
            scope: .organization(organizationId)
        )
        return try rows.map { UniqueFact(day: try $0.get("day"), scope: try $0.get("scope"), visitors: try $0.get("visitors")) }
    }

    func funnel(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>, steps: [String], windowMillis: Int64) async throws -> [Int] {
        guard !steps.isEmpty else { return [] }
        // Per visitor and day, the first time at each step; then count visitors whose steps come in order, each
        // at or after the previous one and within the window of the first.
        let firsts = SQL.joined(
            steps.enumerated().map { index, step in "MIN(CASE WHEN step = \(step) THEN first_at END) AS t\(unsafeRaw: String(index))" },
            separator: ", "
        )
        var reached: [SQL] = []
        var condition: SQL = "t0 IS NOT NULL"
        for index in steps.indices {
            if index > 0 {
                let current = "t\(index)"
                condition =
                    condition
                    + " AND \(unsafeRaw: current) IS NOT NULL AND \(unsafeRaw: current) >= t\(unsafeRaw: String(index - 1)) AND \(unsafeRaw: current) <= t0 + \(windowMillis)"
            }
            reached.append("SUM(CASE WHEN \(condition) THEN 1 ELSE 0 END) AS s\(unsafeRaw: String(index))")
        }
        let stepList = SQL.joined(steps.map { "\($0)" }, separator: ", ")
        let row = try await database.transaction(.organization(organizationId)) { tx in
            try await tx.queryFirst(
                """
                SELECT \(SQL.joined(reached, separator: ", ")) FROM (
                    SELECT \(firsts) FROM \(T.visitorSteps)
                    WHERE site_id = \(siteId) AND day BETWEEN \(days.lowerBound) AND \(days.upperBound) AND step IN (\(stepList))
                    GROUP BY day, visitor
                ) AS v
                """
            )
        }
        return try steps.indices.map { index in try row?.get("s\(index)", as: Int?.self) ?? 0 }
    }

    func cohorts(siteId: UUID, organizationId: UUID, weeks: ClosedRange<Int>) async throws -> [CohortFact] {
        let rows = try await database.query(
            """
            SELECT cohort_week, week_index, new_visitors, conversions, conversion_value FROM \(T.cohorts)
            WHERE site_id = \(siteId) AND cohort_week BETWEEN \(weeks.lowerBound) AND \(weeks.upperBound)
            """,
            scope: .organization(organizationId)
        )
        return try rows.map {
            CohortFact(
                cohortWeek: try $0.get("cohort_week"), weekIndex: try $0.get("week_index"), newVisitors: try $0.get("new_visitors"),
                conversions: try $0.get("conversions"), value: try $0.get("conversion_value")
            )
        }
    }

    func conversions(siteId: UUID, organizationId: UUID, millis: ClosedRange<Int64>) async throws -> [ConversionFact] {
        let rows = try await database.query(
            """
            SELECT at_ms, day, goal, value, notification_id, variant_id, previous_conversion_at, touches FROM \(T.conversions)
            WHERE site_id = \(siteId) AND at_ms BETWEEN \(millis.lowerBound) AND \(millis.upperBound) ORDER BY at_ms, id
            """,
            scope: .organization(organizationId)
        )
        return try rows.map {
            ConversionFact(
                atMillis: try $0.get("at_ms"), day: try $0.get("day"), goal: try $0.get("goal"), value: try $0.get("value"),
                notificationId: try $0.get("notification_id"), variantId: try $0.get("variant_id"),
                previousConversionAt: try $0.get("previous_conversion_at"), touches: Touch.decodeList(try $0.get("touches"))
            )
        }
    }

    func experiments(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> [ExperimentFact] {
        let rows = try await database.query(
            """
            SELECT notification_id, variant_id, SUM(exposures) AS exposures, SUM(conversions) AS conversions FROM \(T.experimentsDay)
            WHERE site_id = \(siteId) AND day BETWEEN \(days.lowerBound) AND \(days.upperBound)
            GROUP BY notification_id, variant_id
            """,
            scope: .organization(organizationId)
        )
        return try rows.map {
            ExperimentFact(
                notificationId: try $0.get("notification_id"), variantId: try $0.get("variant_id"), exposures: try $0.get("exposures"),
                conversions: try $0.get("conversions")
            )
        }
    }

    func bots(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> Int {
        let row = try await database.query(
            "SELECT SUM(beacons) AS n FROM \(T.botsDay) WHERE site_id = \(siteId) AND day BETWEEN \(days.lowerBound) AND \(days.upperBound)",
            scope: .organization(organizationId)
        ).first
        return try row?.get("n", as: Int?.self) ?? 0
    }
}

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
    /// Attribution of the conversions of `days` for ``AttributionTally/rollupWindowDays`` and
    /// ``AttributionTally/rollupHalfLifeDays``, from rollups kept by ingest; nil where none are kept.
    func keptAttribution(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> AttributionTally?
}

extension AnalyticsReader {
    func keptAttribution(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> AttributionTally? { nil }
}

extension Touch {
    static func decodeList(_ text: String?) -> [Touch] {
        guard let text, let data = text.data(using: .utf8) else { return [] }
        return (try? JSONDecoder().decode([Touch].self, from: data)) ?? []
    }
}

/// Reports from the rollups of the embedded store or PostgreSQL. Reads go through `Database.read`: on the embedded
/// store a report then never waits for the writer, and beacon ingest never waits for a report (funnels, which keep
/// their per-day results, write and so take the writer).
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
        let rows = try await database.read(
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
        let rows = try await database.read(
            "SELECT day, scope, visitors FROM \(T.uniquesDay) WHERE site_id = \(siteId) AND day BETWEEN \(days.lowerBound) AND \(days.upperBound)",
            scope: .organization(organizationId)
        )
        return try rows.map { UniqueFact(day: try $0.get("day"), scope: try $0.get("scope"), visitors: try $0.get("visitors")) }
    }

    /// Funnels are computed per day (a visitor's steps are grouped by day) and each day's result is kept with the
    /// day's count of visitor-step changes: a later report reuses it while that count holds, and recomputes only
    /// the days that changed since (typically today).
    func funnel(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>, steps: [String], windowMillis: Int64) async throws -> [Int] {
        guard !steps.isEmpty else { return [] }
        let funnel = try Self.funnelKey(steps: steps, windowMillis: windowMillis)
        return try await database.transaction(.organization(organizationId)) { tx in
            // The counts are read before the steps: a result computed while ingest commits is tagged with the older
            // count, so it is recomputed next time rather than trusted.
            let changes = try await tx.query(
                "SELECT day, changes FROM \(T.stepDays) WHERE site_id = \(siteId) AND day BETWEEN \(days.lowerBound) AND \(days.upperBound)"
            )
            let kept = try await tx.query(
                """
                SELECT day, changes, visitors FROM \(T.funnelDays)
                WHERE site_id = \(siteId) AND day BETWEEN \(days.lowerBound) AND \(days.upperBound) AND funnel = \(funnel)
                """
            )
            var keptByDay: [Int: (changes: Int64, visitors: [Int])] = [:]
            for row in kept {
                let visitors = (try row.get("visitors", as: String.self)).split(separator: ",").compactMap { Int($0) }
                if visitors.count == steps.count { keptByDay[try row.get("day")] = (try row.get("changes"), visitors) }
            }
            var totals = [Int](repeating: 0, count: steps.count)
            var stale: [Int: Int64] = [:]
            for row in changes {
                let day: Int = try row.get("day")
                let count: Int64 = try row.get("changes")
                if let entry = keptByDay[day], entry.changes == count {
                    for index in totals.indices { totals[index] += entry.visitors[index] }
                } else {
                    stale[day] = count
                }
            }
            guard !stale.isEmpty else { return totals }
            let computed = try await funnelByDay(siteId: siteId, days: stale.keys.sorted(), steps: steps, windowMillis: windowMillis, in: tx)
            var rows: [[SQLValue]] = []
            for (day, count) in stale {
                let visitors = computed[day] ?? [Int](repeating: 0, count: steps.count)
                for index in totals.indices { totals[index] += visitors[index] }
                rows.append([
                    .uuid(siteId), .uuid(organizationId), .int(Int64(day)), .text(funnel), .int(count),
                    .text(visitors.map(String.init).joined(separator: ",")),
                ])
            }
            for statement in SQL.insert(
                into: T.funnelDays, alias: "f", columns: ["site_id", "organization_id", "day", "funnel", "changes", "visitors"], rows: rows,
                suffix: " ON CONFLICT (site_id, day, funnel) DO UPDATE SET changes = excluded.changes, visitors = excluded.visitors"
            ) {
                try await tx.execute(statement)
            }
            return totals
        }
    }

    /// What identifies a funnel among a day's kept results: its window and its steps (as JSON, so no step name can
    /// run into the next).
    static func funnelKey(steps: [String], windowMillis: Int64) throws -> String {
        "\(windowMillis) " + String(decoding: try JSONEncoder().encode(steps), as: UTF8.self)
    }

    /// Per visitor and day, the first time at each step; then, per day, the visitors whose steps come in order,
    /// each at or after the previous one and within the window of the first.
    private func funnelByDay(
        siteId: UUID, days: [Int], steps: [String], windowMillis: Int64, in tx: any SQLExecutor
    ) async throws -> [Int: [Int]] {
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
        let dayList = SQL.joined(days.map { "\($0)" }, separator: ", ")
        let rows = try await tx.query(
            """
            SELECT day, \(SQL.joined(reached, separator: ", ")) FROM (
                SELECT day, \(firsts) FROM \(T.visitorSteps)
                WHERE site_id = \(siteId) AND day IN (\(dayList)) AND step IN (\(stepList))
                GROUP BY day, visitor
            ) AS v
            GROUP BY day
            """
        )
        var result: [Int: [Int]] = [:]
        for row in rows {
            result[try row.get("day")] = try steps.indices.map { index in try row.get("s\(index)", as: Int?.self) ?? 0 }
        }
        return result
    }

    func cohorts(siteId: UUID, organizationId: UUID, weeks: ClosedRange<Int>) async throws -> [CohortFact] {
        let rows = try await database.read(
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
        let rows = try await database.read(
            """
            SELECT at_ms, day, goal, value, notification_id, variant_id, previous_conversion_at, touches FROM \(T.conversions)
            WHERE site_id = \(siteId) AND at_ms BETWEEN \(millis.lowerBound) AND \(millis.upperBound) ORDER BY at_ms, id
            """,
            scope: .organization(organizationId)
        )
        return try rows.map(Self.conversion)
    }

    static func conversion(_ row: SQLRow) throws -> ConversionFact {
        ConversionFact(
            atMillis: try row.get("at_ms"), day: try row.get("day"), goal: try row.get("goal"), value: try row.get("value"),
            notificationId: try row.get("notification_id"), variantId: try row.get("variant_id"),
            previousConversionAt: try row.get("previous_conversion_at"), touches: Touch.decodeList(try row.get("touches"))
        )
    }

    func experiments(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> [ExperimentFact] {
        let rows = try await database.read(
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

    /// Days whose rollup counts every conversion of the day are read from it; the others (conversions kept before the
    /// rollup existed) are credited from their raw rows, by the same rule.
    func keptAttribution(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> AttributionTally? {
        try await database.read(.organization(organizationId)) { tx in
            let range: SQL = "site_id = \(siteId) AND day BETWEEN \(days.lowerBound) AND \(days.upperBound)"
            var conversionsPerDay: [Int: Int] = [:]
            for row in try await tx.query("SELECT day, COUNT(*) AS n FROM \(T.conversions) WHERE \(range) GROUP BY day") {
                conversionsPerDay[try row.get("day")] = try row.get("n")
            }
            var tally = AttributionTally()
            var complete = Set<Int>()
            let totals = try await tx.query(
                "SELECT day, total, attributed, unattributed, repeat_within_window, attributed_value FROM \(T.attributionTotalsDay) WHERE \(range)"
            )
            for row in totals {
                let day: Int = try row.get("day")
                let total: Int = try row.get("total")
                guard conversionsPerDay[day] == total else { continue }
                complete.insert(day)
                tally.total += total
                tally.attributed += try row.get("attributed") as Int
                tally.unattributed += try row.get("unattributed") as Int
                tally.repeatWithinWindow += try row.get("repeat_within_window") as Int
                tally.attributedValue += try row.get("attributed_value") as Double
            }
            if !complete.isEmpty {
                let credits = try await tx.query("SELECT day, model, notification_id, conversions, value FROM \(T.attributionDay) WHERE \(range)")
                for row in credits where complete.contains(try row.get("day")) {
                    let model: String = try row.get("model")
                    let notificationId: UUID = try row.get("notification_id")
                    let conversions: Double = try row.get("conversions")
                    let value: Double = try row.get("value")
                    tally.credit[model, default: [:]][notificationId, default: AttributionTally.Credit()].conversions += conversions
                    tally.credit[model, default: [:]][notificationId, default: AttributionTally.Credit()].value += value
                }
            }
            let missing = conversionsPerDay.keys.filter { !complete.contains($0) }
            if let first = missing.min(), let last = missing.max() {
                let rows = try await tx.query(
                    """
                    SELECT at_ms, day, goal, value, notification_id, variant_id, previous_conversion_at, touches FROM \(T.conversions)
                    WHERE site_id = \(siteId) AND day BETWEEN \(first) AND \(last) ORDER BY at_ms, id
                    """
                )
                let wanted = Set(missing)
                for fact in try rows.map(Self.conversion) where wanted.contains(fact.day) {
                    tally.add(
                        fact, windowDays: AttributionTally.rollupWindowDays, halfLifeDays: AttributionTally.rollupHalfLifeDays,
                        models: AttributionTally.models
                    )
                }
            }
            return tally
        }
    }

    func bots(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> Int {
        let row = try await database.read(
            "SELECT SUM(beacons) AS n FROM \(T.botsDay) WHERE site_id = \(siteId) AND day BETWEEN \(days.lowerBound) AND \(days.upperBound)",
            scope: .organization(organizationId)
        ).first
        return try row?.get("n", as: Int?.self) ?? 0
    }
}

import Foundation
import HeraldCore

/// The ClickHouse schema and every query the reader and shipper send, as text (unit-tested, and run against
/// ClickHouse 18.16: no `LowCardinality`, no `DateTime64`, no query parameters).
enum ClickHouseQueries {
    static let table = "events"

    static func createDatabase(_ database: String) -> String { "CREATE DATABASE IF NOT EXISTS \(database)" }

    /// Raw events as `RawEvent` plus `seq` and `organization_id`, partitioned by UTC month of the event time and
    /// ordered so that a site's range of time is one contiguous read.
    ///
    /// `value` arrives as the bits of the double (`value_bits`): ClickHouse 18.16 parses decimal text in input formats
    /// with a fast parser that can be one unit in the last place off (3.28 becomes 3.2800000000000002), and sums must
    /// start from the very values the rollups added.
    static let createEvents = """
        CREATE TABLE IF NOT EXISTS \(table) (
            seq Int64,
            organization_id UUID,
            site_id UUID,
            at_ms Int64,
            hour Int64,
            day UInt32,
            visitor_day UInt32,
            type String,
            notification_id Nullable(UUID),
            variant_id Nullable(UUID),
            activity_id Nullable(UUID),
            visitor String,
            session Nullable(String),
            path Nullable(String),
            referrer Nullable(String),
            utm_source Nullable(String),
            utm_medium Nullable(String),
            utm_campaign Nullable(String),
            device String,
            country Nullable(String),
            goal Nullable(String),
            value_bits Nullable(Int64),
            value Nullable(Float64) MATERIALIZED if(isNull(value_bits), NULL, reinterpretAsFloat64(reinterpretAsString(assumeNotNull(value_bits)))),
            exposure UInt8,
            ab_conversion UInt8,
            new_visitor UInt8,
            cohort_week Nullable(Int32),
            cohort_index Nullable(Int32),
            previous_conversion_at Nullable(Int64),
            touches Nullable(String)
        ) ENGINE = MergeTree
        PARTITION BY toYYYYMM(toDate(toDateTime(intDiv(at_ms, 1000), 'UTC')))
        ORDER BY (organization_id, site_id, at_ms, seq)
        """

    /// The partition (`yyyymm` of the UTC day) a row lands in, as the table's partition key computes it. An insert
    /// whose rows share one partition is one part, which commits whole or not at all.
    static func partition(atMillis millis: Int64) -> Int {
        let seconds = millis / 1000  // intDiv: truncates, like ClickHouse
        let days = Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400)
        let (year, month, _) = LocalTime.civil(days: days)
        return year * 100 + month
    }

    /// How far every organization's rows reached: the highest `seq` of each (an organization's rows are shipped in
    /// `seq` order, whole inserts at a time, so everything of it up to there is in and nothing after).
    static let positions = "SELECT toString(organization_id) AS organization_id, max(seq) AS seq FROM \(table) GROUP BY organization_id"

    // MARK: Reports

    static func site(_ siteId: UUID, _ organizationId: UUID) -> String {
        "organization_id = \(ClickHouseSQL.uuid(organizationId)) AND site_id = \(ClickHouseSQL.uuid(siteId))"
    }

    /// A range of event times that surely holds every event of the site-local days (or visitor days) `days`: a day
    /// key is at most 14 hours from UTC, and a visitor's day is the day the beacon arrived, within a day of its time.
    static func millis(around days: ClosedRange<Int>) -> ClosedRange<Int64> {
        let first = Int64(LocalTime.days(dayKey: days.lowerBound) ?? 0) - 3
        let last = Int64(LocalTime.days(dayKey: days.upperBound) ?? 0) + 4
        return first * 86_400_000...last * 86_400_000 - 1
    }

    static let noneUUID = ClickHouseSQL.uuid(noneId)

    static func counters(siteId: UUID, organizationId: UUID, granularity: Granularity, buckets: ClosedRange<Int64>) -> String {
        let bucket: String
        let millis: ClosedRange<Int64>
        switch granularity {
        case .minute:
            // UTC minutes, in seconds.
            bucket = "intDiv(at_ms, 60000) * 60"
            millis = buckets.lowerBound * 1000...buckets.upperBound * 1000 + 59_999
        case .hour:
            // The site-local hour's start in Unix seconds; the event is within the hour after it.
            bucket = "hour"
            millis = buckets.lowerBound * 1000 - 86_400_000...buckets.upperBound * 1000 + 86_400_000
        case .day:
            bucket = "day"
            millis = Self.millis(around: Int(buckets.lowerBound)...Int(buckets.upperBound))
        }
        return """
            SELECT \(bucket) AS bucket, ifNull(notification_id, \(noneUUID)) AS n, ifNull(variant_id, \(noneUUID)) AS v,
                countIf(type = 'pageview') AS pageviews, countIf(type = 'impression') AS impressions, countIf(type = 'hover') AS hovers,
                countIf(type = 'click') AS clicks, countIf(type = 'close') AS closes, countIf(type = 'conversion') AS conversions,
                sumIf(ifNull(value, 0), type = 'conversion') AS conversion_value
            FROM \(table)
            WHERE \(site(siteId, organizationId)) AND at_ms BETWEEN \(millis.lowerBound) AND \(millis.upperBound)
                AND bucket BETWEEN \(buckets.lowerBound) AND \(buckets.upperBound)
            GROUP BY bucket, n, v
            """
    }

    /// Distinct visitors per visitor day: of the site (`""`), with an impression of a notification (`n:<id>`), of a
    /// variant (`v:<id>:<variant>`), as ingest claims them from `visitor_steps`.
    static func uniques(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) -> String {
        let millis = Self.millis(around: days)
        let impression = "type = 'impression' AND notification_id IS NOT NULL"
        let n = "toString(assumeNotNull(notification_id))"
        return """
            SELECT visitor_day, scope, uniqExact(visitor) AS visitors FROM (
                SELECT visitor_day, visitor, arrayJoin([
                    '',
                    if(\(impression), concat('n:', \(n)), '-'),
                    if(\(impression) AND variant_id IS NOT NULL, concat('v:', \(n), ':', toString(assumeNotNull(variant_id))), '-')
                ]) AS scope
                FROM \(table)
                WHERE \(site(siteId, organizationId)) AND visitor_day BETWEEN \(days.lowerBound) AND \(days.upperBound)
                    AND at_ms BETWEEN \(millis.lowerBound) AND \(millis.upperBound)
            )
            WHERE scope != '-'
            GROUP BY visitor_day, scope
            """
    }

    /// The rows that take a visitor through a step of `visitor_steps` (see `IngestWork.steps(of:)`), or nil for a
    /// step that raw events cannot tell.
    static func stepCondition(_ step: String) -> String? {
        let parts = step.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        func typed(_ type: String) -> String? {
            switch parts.count {
            case 1: return "type = '\(type)'"
            case 2:
                guard let n = UUID(text: parts[1]) else { return nil }
                return "type = '\(type)' AND notification_id = \(ClickHouseSQL.uuid(n))"
            default:
                guard let n = UUID(text: parts[1]), let v = UUID(text: parts[2]) else { return nil }
                return "type = '\(type)' AND notification_id = \(ClickHouseSQL.uuid(n)) AND variant_id = \(ClickHouseSQL.uuid(v))"
            }
        }
        switch parts[0] {
        case "seen" where parts.count == 1: return "1"
        case "p": return typed("pageview")
        case "i": return typed("impression")
        case "h" where parts.count <= 2: return typed("hover")
        case "k" where parts.count <= 2: return typed("click")
        case "c" where parts.count <= 2: return typed("conversion")
        case "g" where parts.count >= 2:
            return "type = 'conversion' AND goal = \(ClickHouseSQL.string(String(step.dropFirst(2))))"
        default: return nil
        }
    }

    /// Per visitor and day the first time at each step, then the visitors whose steps come in order, each at or after
    /// the previous one and within `windowMillis` of the first (as `SQLAnalyticsReader.funnel` counts them).
    static func funnel(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>, steps: [String], windowMillis: Int64) -> String? {
        guard !steps.isEmpty else { return nil }
        let conditions = steps.map { stepCondition($0) ?? "0" }
        let firsts = conditions.enumerated().map { index, condition in
            "countIf(\(condition)) > 0 AS h\(index), minIf(at_ms, \(condition)) AS t\(index)"
        }
        var reached: [String] = []
        var condition = "h0"
        for index in steps.indices {
            if index > 0 {
                condition += " AND h\(index) AND t\(index) >= t\(index - 1) AND t\(index) <= t0 + \(windowMillis)"
            }
            reached.append("sum(\(condition)) AS s\(index)")
        }
        let millis = Self.millis(around: days)
        let any = Array(Set(conditions)).sorted().map { "(\($0))" }.joined(separator: " OR ")
        return """
            SELECT \(reached.joined(separator: ", ")) FROM (
                SELECT \(firsts.joined(separator: ", "))
                FROM \(table)
                WHERE \(site(siteId, organizationId)) AND visitor_day BETWEEN \(days.lowerBound) AND \(days.upperBound)
                    AND at_ms BETWEEN \(millis.lowerBound) AND \(millis.upperBound) AND (\(any))
                GROUP BY visitor_day, visitor
            )
            """
    }

    static func cohorts(siteId: UUID, organizationId: UUID, weeks: ClosedRange<Int>) -> String {
        """
        SELECT cohort_week, cohort_index AS week_index, sum(new_visitor) AS new_visitors, countIf(type = 'conversion') AS conversions,
            sumIf(ifNull(value, 0), type = 'conversion') AS conversion_value
        FROM \(table)
        WHERE \(site(siteId, organizationId)) AND cohort_week IS NOT NULL AND cohort_index IS NOT NULL
            AND cohort_week BETWEEN \(weeks.lowerBound) AND \(weeks.upperBound)
        GROUP BY cohort_week, cohort_index
        """
    }

    static func conversions(siteId: UUID, organizationId: UUID, millis: ClosedRange<Int64>) -> String {
        """
        SELECT at_ms, day, goal, value, notification_id, variant_id, previous_conversion_at, touches
        FROM \(table)
        WHERE \(site(siteId, organizationId)) AND type = 'conversion' AND at_ms BETWEEN \(millis.lowerBound) AND \(millis.upperBound)
        ORDER BY at_ms, seq
        """
    }

    static func experiments(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) -> String {
        let millis = Self.millis(around: days)
        return """
            SELECT assumeNotNull(notification_id) AS n, assumeNotNull(variant_id) AS v, sum(exposure) AS exposures,
                sum(ab_conversion) AS conversions
            FROM \(table)
            WHERE \(site(siteId, organizationId)) AND day BETWEEN \(days.lowerBound) AND \(days.upperBound)
                AND at_ms BETWEEN \(millis.lowerBound) AND \(millis.upperBound)
                AND notification_id IS NOT NULL AND variant_id IS NOT NULL AND (exposure = 1 OR ab_conversion = 1)
            GROUP BY n, v
            """
    }
}

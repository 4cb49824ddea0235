import Foundation
import HeraldContracts
import HeraldCore
import Logging

/// Reports from raw events in ClickHouse: every fact is recomputed from the rows ingest wrote (which carry its
/// per-visitor decisions), so the numbers are the rollups' numbers. Bot beacons are not raw events: they come from
/// the store's rollup.
struct ClickHouseReader: AnalyticsReader {
    typealias Q = ClickHouseQueries
    let client: ClickHouseClient
    /// For what raw events do not hold (bots).
    let store: SQLAnalyticsReader
    let logger: Logger

    func counters(siteId: UUID, organizationId: UUID, granularity: Granularity, buckets: ClosedRange<Int64>) async throws -> [CounterFact] {
        try await rows(Q.counters(siteId: siteId, organizationId: organizationId, granularity: granularity, buckets: buckets)).map { row in
            CounterFact(
                bucket: try int64(row, "bucket"), notificationId: try uuid(row, "n"), variantId: try uuid(row, "v"),
                counters: Counters(
                    pageviews: try int(row, "pageviews"), impressions: try int(row, "impressions"), hovers: try int(row, "hovers"),
                    clicks: try int(row, "clicks"), closes: try int(row, "closes"), conversions: try int(row, "conversions"),
                    conversionValue: try double(row, "conversion_value")
                )
            )
        }
    }

    func uniques(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> [UniqueFact] {
        try await rows(Q.uniques(siteId: siteId, organizationId: organizationId, days: days)).map { row in
            guard let scope = row["scope"]?.string else { throw Self.badRow("scope") }
            return UniqueFact(day: try int(row, "visitor_day"), scope: scope, visitors: try int(row, "visitors"))
        }
    }

    func funnel(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>, steps: [String], windowMillis: Int64) async throws -> [Int] {
        guard let query = Q.funnel(siteId: siteId, organizationId: organizationId, days: days, steps: steps, windowMillis: windowMillis) else {
            return []
        }
        let row = try await rows(query).first
        return try steps.indices.map { index in try row.map { try int($0, "s\(index)") } ?? 0 }
    }

    func cohorts(siteId: UUID, organizationId: UUID, weeks: ClosedRange<Int>) async throws -> [CohortFact] {
        try await rows(Q.cohorts(siteId: siteId, organizationId: organizationId, weeks: weeks)).map { row in
            CohortFact(
                cohortWeek: try int(row, "cohort_week"), weekIndex: try int(row, "week_index"), newVisitors: try int(row, "new_visitors"),
                conversions: try int(row, "conversions"), value: try double(row, "conversion_value")
            )
        }
    }

    func conversions(siteId: UUID, organizationId: UUID, millis: ClosedRange<Int64>) async throws -> [ConversionFact] {
        try await rows(Q.conversions(siteId: siteId, organizationId: organizationId, millis: millis)).map { row in
            ConversionFact(
                atMillis: try int64(row, "at_ms"), day: try int(row, "day"), goal: row["goal"]?.string,
                value: row["value"].flatMap(ClickHouseSQL.double),
                notificationId: row["notification_id"].flatMap(ClickHouseSQL.uuid), variantId: row["variant_id"].flatMap(ClickHouseSQL.uuid),
                previousConversionAt: row["previous_conversion_at"].flatMap(ClickHouseSQL.int64),
                touches: Touch.decodeList(row["touches"]?.string)
            )
        }
    }

    func experiments(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> [ExperimentFact] {
        try await rows(Q.experiments(siteId: siteId, organizationId: organizationId, days: days)).map { row in
            ExperimentFact(
                notificationId: try uuid(row, "n"), variantId: try uuid(row, "v"), exposures: try int(row, "exposures"),
                conversions: try int(row, "conversions")
            )
        }
    }

    func bots(siteId: UUID, organizationId: UUID, days: ClosedRange<Int>) async throws -> Int {
        try await store.bots(siteId: siteId, organizationId: organizationId, days: days)
    }

    // MARK: Reading answers

    /// Runs a report query; ClickHouse failing is a 503 that says which store is down, with the details in the log.
    private func rows(_ query: String) async throws -> [JSONNode] {
        do {
            return try await client.select(query)
        } catch let error as ClickHouseError {
            logger.error("a report query to ClickHouse failed", metadata: ["error": "\(error)"])
            throw HeraldError.unavailable("Reports are read from ClickHouse, which did not answer; try again shortly.")
        }
    }

    static func badRow(_ column: String) -> HeraldError {
        HeraldError.unavailable("ClickHouse answered a report query without a readable \(column); is its events table Herald's?")
    }

    private func int64(_ row: JSONNode, _ column: String) throws -> Int64 {
        guard let value = row[column].flatMap(ClickHouseSQL.int64) else { throw Self.badRow(column) }
        return value
    }

    private func int(_ row: JSONNode, _ column: String) throws -> Int { Int(try int64(row, column)) }

    private func double(_ row: JSONNode, _ column: String) throws -> Double {
        guard let value = row[column].flatMap(ClickHouseSQL.double) else { throw Self.badRow(column) }
        return value
    }

    private func uuid(_ row: JSONNode, _ column: String) throws -> UUID {
        guard let value = row[column].flatMap(ClickHouseSQL.uuid) else { throw Self.badRow(column) }
        return value
    }
}

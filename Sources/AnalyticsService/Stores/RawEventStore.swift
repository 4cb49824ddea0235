import Foundation
import HeraldCore
import HeraldStorage

/// One raw event row as written (and as shipped to ClickHouse).
struct RawEvent: Sendable, Codable {
    var siteId: UUID
    var atMillis: Int64
    var hour: Int64
    var day: Int
    var visitorDay: Int
    var type: String
    var notificationId: UUID?
    var variantId: UUID?
    var activityId: UUID?
    var visitor: String
    var session: String?
    var path: String?
    var referrer: String?
    var utmSource: String?
    var utmMedium: String?
    var utmCampaign: String?
    var device: String
    var country: String?
    var goal: String?
    var value: Double?
    var exposure = false
    var abConversion = false
    var newVisitor = false
    var cohortWeek: Int?
    var cohortIndex: Int?
    var previousConversionAt: Int64?
    var touches: String?
}

/// A raw event as stored, with its sequence number and organization (exports, archives, ClickHouse).
struct StoredRawEvent: Sendable {
    var seq: Int64
    var organizationId: UUID
    var event: RawEvent
}

/// Reads raw events in pages by sequence number, and removes archived days. Ingest writes them (``IngestStore``).
struct RawEventStore: Sendable {
    typealias T = AnalyticsTables

    static let columns = "seq, organization_id, " + IngestStore.rawColumns.joined(separator: ", ")

    /// A site's events in `millis` after `seq`, in sequence order.
    func page(siteId: UUID, millis: ClosedRange<Int64>, after seq: Int64, limit: Int, in tx: any SQLExecutor) async throws -> [StoredRawEvent] {
        try await tx.query(
            """
            SELECT \(unsafeRaw: Self.columns) FROM \(T.events)
            WHERE site_id = \(siteId) AND at_ms BETWEEN \(millis.lowerBound) AND \(millis.upperBound) AND seq > \(seq)
            ORDER BY seq LIMIT \(limit)
            """
        ).map(Self.decode)
    }

    func count(siteId: UUID, millis: ClosedRange<Int64>, in tx: any SQLExecutor) async throws -> Int {
        try await tx.queryFirst(
            "SELECT COUNT(*) AS n FROM \(T.events) WHERE site_id = \(siteId) AND at_ms BETWEEN \(millis.lowerBound) AND \(millis.upperBound)"
        )?.get("n") ?? 0
    }

    /// An organization's events in `millis` after `seq` (archiving one organization's day). The organization is named
    /// in the query, not left to row-level security: SQLite has none.
    func page(
        organizationId: UUID, millis: Range<Int64>, after seq: Int64, limit: Int, restored: Bool = false, in tx: any SQLExecutor
    ) async throws -> [StoredRawEvent] {
        try await tx.query(
            """
            SELECT \(unsafeRaw: Self.columns) FROM \(T.events)
            WHERE organization_id = \(organizationId) AND at_ms >= \(millis.lowerBound) AND at_ms < \(millis.upperBound) AND seq > \(seq)
            AND restored = \(restored ? 1 : 0)
            ORDER BY seq LIMIT \(limit)
            """
        ).map(Self.decode)
    }

    /// An organization's earliest event time, to find what is old enough to archive.
    func oldest(organizationId: UUID, restored: Bool, in tx: any SQLExecutor) async throws -> Int64? {
        try await tx.queryFirst(
            "SELECT MIN(at_ms) AS at FROM \(T.events) WHERE organization_id = \(organizationId) AND restored = \(restored ? 1 : 0)"
        )?.get("at")
    }

    /// Deletes an organization's events in `millis` up to sequence number `throughSeq` (after they were archived).
    func delete(
        organizationId: UUID, millis: Range<Int64>, restored: Bool, throughSeq: Int64 = .max, in tx: any SQLExecutor
    ) async throws {
        try await tx.execute(
            """
            DELETE FROM \(T.events) WHERE organization_id = \(organizationId) AND at_ms >= \(millis.lowerBound) AND at_ms < \(millis.upperBound)
            AND restored = \(restored ? 1 : 0) AND seq <= \(throughSeq)
            """
        )
    }

    static func decode(_ row: SQLRow) throws -> StoredRawEvent {
        func flag(_ name: String) throws -> Bool { try row.get(name, as: Int64.self) != 0 }
        return StoredRawEvent(
            seq: try row.get("seq"), organizationId: try row.get("organization_id"),
            event: RawEvent(
                siteId: try row.get("site_id"), atMillis: try row.get("at_ms"), hour: try row.get("hour"), day: try row.get("day"),
                visitorDay: try row.get("visitor_day"), type: try row.get("type"), notificationId: try row.get("notification_id"),
                variantId: try row.get("variant_id"), activityId: try row.get("activity_id"), visitor: try row.get("visitor"),
                session: try row.get("session"), path: try row.get("path"), referrer: try row.get("referrer"),
                utmSource: try row.get("utm_source"), utmMedium: try row.get("utm_medium"), utmCampaign: try row.get("utm_campaign"),
                device: try row.get("device"), country: try row.get("country"), goal: try row.get("goal"), value: try row.get("value"),
                exposure: try flag("exposure"), abConversion: try flag("ab_conversion"), newVisitor: try flag("new_visitor"),
                cohortWeek: try row.get("cohort_week"), cohortIndex: try row.get("cohort_index"),
                previousConversionAt: try row.get("previous_conversion_at"), touches: try row.get("touches")
            )
        )
    }
}

extension RawEvent {
    /// The column names, used in NDJSON archives, CSV exports and ClickHouse rows alike.
    enum CodingKeys: String, CodingKey, CaseIterable {
        case siteId = "site_id", atMillis = "at_ms", hour, day, visitorDay = "visitor_day", type, notificationId = "notification_id"
        case variantId = "variant_id", activityId = "activity_id", visitor, session, path, referrer, utmSource = "utm_source"
        case utmMedium = "utm_medium", utmCampaign = "utm_campaign", device, country, goal, value, exposure, abConversion = "ab_conversion"
        case newVisitor = "new_visitor", cohortWeek = "cohort_week", cohortIndex = "cohort_index"
        case previousConversionAt = "previous_conversion_at", touches
    }

    /// One JSON object on one line (no newline), written by hand: archives hold millions of these.
    func jsonLine(organizationId: UUID? = nil, seq: Int64? = nil, flagsAsNumbers: Bool = false) -> String {
        var json = JSONWriter(capacity: 512)
        json.beginObject()
        json.field("seq", seq)
        json.field("organization_id", organizationId)
        json.field("site_id", siteId)
        json.field("at_ms", atMillis)
        json.field("hour", hour)
        json.field("day", Int64(day))
        json.field("visitor_day", Int64(visitorDay))
        json.field("type", type)
        json.field("notification_id", notificationId)
        json.field("variant_id", variantId)
        json.field("activity_id", activityId)
        json.field("visitor", visitor)
        json.field("session", session)
        json.field("path", path)
        json.field("referrer", referrer)
        json.field("utm_source", utmSource)
        json.field("utm_medium", utmMedium)
        json.field("utm_campaign", utmCampaign)
        json.field("device", device)
        json.field("country", country)
        json.field("goal", goal)
        json.field("value", value)
        if flagsAsNumbers {
            json.field("exposure", Int64(exposure ? 1 : 0))
            json.field("ab_conversion", Int64(abConversion ? 1 : 0))
            json.field("new_visitor", Int64(newVisitor ? 1 : 0))
        } else {
            json.field("exposure", exposure)
            json.field("ab_conversion", abConversion)
            json.field("new_visitor", newVisitor)
        }
        json.field("cohort_week", cohortWeek.map(Int64.init))
        json.field("cohort_index", cohortIndex.map(Int64.init))
        json.field("previous_conversion_at", previousConversionAt)
        json.field("touches", touches)
        json.endObject()
        return json.text
    }

    /// The CSV columns of an events export, in order.
    static let csvHeader = [
        "time", "type", "notification_id", "variant_id", "activity_id", "visitor", "session", "path", "referrer", "utm_source",
        "utm_medium", "utm_campaign", "device", "country", "goal", "value", "exposure", "new_visitor",
    ]

    func csvRow() -> [String] {
        [
            ISO8601.string(from: Date(timeIntervalSince1970: Double(atMillis) / 1000)), type, notificationId?.lowercased ?? "",
            variantId?.lowercased ?? "", activityId?.lowercased ?? "", visitor, session ?? "", path ?? "", referrer ?? "", utmSource ?? "",
            utmMedium ?? "", utmCampaign ?? "", device, country ?? "", goal ?? "", value.map { String($0) } ?? "", exposure ? "1" : "0",
            newVisitor ? "1" : "0",
        ]
    }
}

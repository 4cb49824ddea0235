import Foundation
import HeraldCore
import HeraldStorage

/// Writes ingest results: one multi-row statement per table (per few thousand rows), never one per beacon.
struct IngestStore: Sendable {
    typealias T = AnalyticsTables

    /// Inserts visitor steps not seen before (or moves a step's time earlier) and returns the ones this call
    /// created, and how many rows it wrote or moved per site and day (which invalidates that day's kept funnels).
    /// A random token marks the rows written now, which tells a new row from an existing one on both stores.
    func upsertSteps(
        _ candidates: [StepKey: Int64], organizationId: UUID, in tx: any SQLExecutor
    ) async throws -> (fresh: Set<StepKey>, changes: [SiteDay: Int]) {
        guard !candidates.isEmpty else { return ([], [:]) }
        if tx.dialect == .postgres { return try await upsertStepsOnPostgres(candidates, organizationId: organizationId, in: tx) }
        let token = Int64.random(in: 1...Int64.max)
        let rows: [[SQLValue]] = candidates.map { key, at in
            [.uuid(key.siteId), .uuid(organizationId), .int(Int64(key.day)), .text(key.visitor), .text(key.step), .int(at), .int(token)]
        }
        var fresh = Set<StepKey>()
        var changes: [SiteDay: Int] = [:]
        for statement in SQL.insert(
            into: T.visitorSteps, alias: "s", columns: ["site_id", "organization_id", "day", "visitor", "step", "first_at", "written_by"],
            rows: rows,
            suffix: """
                 ON CONFLICT (site_id, day, visitor, step) DO UPDATE SET first_at = excluded.first_at
                 WHERE excluded.first_at < s.first_at
                 RETURNING site_id, day, visitor, step, written_by
                """
        ) {
            for row in try await tx.query(statement) {
                let siteId: UUID = try row.get("site_id")
                let day: Int = try row.get("day")
                changes[SiteDay(siteId: siteId, day: day), default: 0] += 1
                if try row.get("written_by", as: Int64.self) == token {
                    fresh.insert(StepKey(siteId: siteId, day: day, visitor: try row.get("visitor"), step: try row.get("step")))
                }
            }
        }
        return (fresh, changes)
    }

    /// PostgreSQL's `ON CONFLICT … DO UPDATE … WHERE` locks every conflicting row even when the `WHERE` leaves it
    /// alone: a write and its WAL for each step a visitor had already taken, which is most of them (measured: 16 µs a
    /// step under beacon load, the largest share of PostgreSQL's time on single beacons). New steps are inserted with
    /// `DO NOTHING` instead, and of the others only those whose time moves earlier are updated.
    private func upsertStepsOnPostgres(
        _ candidates: [StepKey: Int64], organizationId: UUID, in tx: any SQLExecutor
    ) async throws -> (fresh: Set<StepKey>, changes: [SiteDay: Int]) {
        var fresh = Set<StepKey>()
        var changes: [SiteDay: Int] = [:]
        let rows: [[SQLValue]] = candidates.map { key, at in
            [.uuid(key.siteId), .uuid(organizationId), .int(Int64(key.day)), .text(key.visitor), .text(key.step), .int(at), .int(0)]
        }
        for statement in SQL.insert(
            into: T.visitorSteps, columns: ["site_id", "organization_id", "day", "visitor", "step", "first_at", "written_by"], rows: rows,
            suffix: " ON CONFLICT (site_id, day, visitor, step) DO NOTHING RETURNING site_id, day, visitor, step"
        ) {
            for row in try await tx.query(statement) {
                let key = StepKey(siteId: try row.get("site_id"), day: try row.get("day"), visitor: try row.get("visitor"), step: try row.get("step"))
                fresh.insert(key)
                changes[SiteDay(siteId: key.siteId, day: key.day), default: 0] += 1
            }
        }
        let earlier: [[SQLValue]] = candidates.compactMap { key, at in
            fresh.contains(key) ? nil : [.uuid(key.siteId), .int(Int64(key.day)), .text(key.visitor), .text(key.step), .int(at)]
        }
        for start in stride(from: 0, to: earlier.count, by: 5000) {
            let chunk = Array(earlier[start..<min(start + 5000, earlier.count)])
            let moved = try await tx.query(
                """
                UPDATE \(T.visitorSteps) AS s SET first_at = v.c4
                FROM (\(SQL.rows(chunk))) AS v(c0, c1, c2, c3, c4)
                WHERE s.site_id = v.c0 AND s.day = v.c1 AND s.visitor = v.c2 AND s.step = v.c3 AND v.c4 < s.first_at
                RETURNING s.site_id, s.day
                """
            )
            for row in moved { changes[SiteDay(siteId: try row.get("site_id"), day: try row.get("day")), default: 0] += 1 }
        }
        return (fresh, changes)
    }

    /// Applies one organization's share of a batch: writes the visitor steps that may change the store
    /// (`steps`), makes every per-visitor decision from what they say, and writes the rest.
    func apply(_ work: inout IngestWork, steps: [StepKey: Int64], in tx: any SQLExecutor) async throws {
        let (fresh, changes) = try await upsertSteps(steps, organizationId: work.organizationId, in: tx)
        work.stepChanges = changes
        work.decide(freshSteps: fresh)
        try await write(work, in: tx)
    }

    func write(_ work: IngestWork, in tx: any SQLExecutor) async throws {
        let org = SQLValue.uuid(work.organizationId)
        try await insertRaw(work.raw, organizationId: work.organizationId, in: tx)
        if !work.conversions.isEmpty {
            let rows: [[SQLValue]] = work.conversions.map {
                [
                    .uuid($0.id), .uuid($0.siteId), org, .int($0.atMillis), .int(Int64($0.day)), Self.text($0.goal), Self.double($0.value),
                    Self.uuid($0.notificationId), Self.uuid($0.variantId), Self.int($0.previousConversionAt), Self.text($0.touches),
                ]
            }
            for statement in SQL.insert(
                into: T.conversions,
                columns: [
                    "id", "site_id", "organization_id", "at_ms", "day", "goal", "value", "notification_id", "variant_id",
                    "previous_conversion_at", "touches",
                ],
                rows: rows
            ) {
                try await tx.execute(statement)
            }
        }
        for (table, rollup) in [(T.rollupMinute, work.minutes), (T.rollupHour, work.hours), (T.rollupDay, work.days)] {
            try await upsertRollup(table, rollup, organizationId: work.organizationId, in: tx)
        }
        if !work.uniques.isEmpty {
            let rows: [[SQLValue]] = work.uniques.map {
                [.uuid($0.key.siteId), org, .int(Int64($0.key.day)), .text($0.key.scope), .int(Int64($0.value))]
            }
            for statement in SQL.insert(
                into: T.uniquesDay, alias: "u", columns: ["site_id", "organization_id", "day", "scope", "visitors"], rows: rows,
                suffix: " ON CONFLICT (site_id, day, scope) DO UPDATE SET visitors = u.visitors + excluded.visitors"
            ) {
                try await tx.execute(statement)
            }
        }
        if !work.experiments.isEmpty {
            let rows: [[SQLValue]] = work.experiments.map {
                [
                    .uuid($0.key.siteId), org, .int(Int64($0.key.day)), .uuid($0.key.notificationId), .uuid($0.key.variantId),
                    .int(Int64($0.value.exposures)), .int(Int64($0.value.conversions)),
                ]
            }
            for statement in SQL.insert(
                into: T.experimentsDay, alias: "x",
                columns: ["site_id", "organization_id", "day", "notification_id", "variant_id", "exposures", "conversions"], rows: rows,
                suffix: """
                     ON CONFLICT (site_id, day, notification_id, variant_id) DO UPDATE SET
                     exposures = x.exposures + excluded.exposures, conversions = x.conversions + excluded.conversions
                    """
            ) {
                try await tx.execute(statement)
            }
        }
        if !work.cohorts.isEmpty {
            let rows: [[SQLValue]] = work.cohorts.map {
                [
                    .uuid($0.key.siteId), org, .int(Int64($0.key.cohortWeek)), .int(Int64($0.key.weekIndex)), .int(Int64($0.value.newVisitors)),
                    .int(Int64($0.value.conversions)), .double($0.value.value),
                ]
            }
            for statement in SQL.insert(
                into: T.cohorts, alias: "c",
                columns: ["site_id", "organization_id", "cohort_week", "week_index", "new_visitors", "conversions", "conversion_value"],
                rows: rows,
                suffix: """
                     ON CONFLICT (site_id, cohort_week, week_index) DO UPDATE SET
                     new_visitors = c.new_visitors + excluded.new_visitors, conversions = c.conversions + excluded.conversions,
                     conversion_value = c.conversion_value + excluded.conversion_value
                    """
            ) {
                try await tx.execute(statement)
            }
        }
        if !work.stepChanges.isEmpty {
            let rows: [[SQLValue]] = work.stepChanges.map { [.uuid($0.key.siteId), org, .int(Int64($0.key.day)), .int(Int64($0.value))] }
            for statement in SQL.insert(
                into: T.stepDays, alias: "d", columns: ["site_id", "organization_id", "day", "changes"], rows: rows,
                suffix: " ON CONFLICT (site_id, day) DO UPDATE SET changes = d.changes + excluded.changes"
            ) {
                try await tx.execute(statement)
            }
        }
        try await writeAttribution(work.attribution, organizationId: work.organizationId, in: tx)
        if !work.bots.isEmpty {
            let rows: [[SQLValue]] = work.bots.map { [.uuid($0.key.siteId), org, .int(Int64($0.key.day)), .int(Int64($0.value))] }
            for statement in SQL.insert(
                into: T.botsDay, alias: "b", columns: ["site_id", "organization_id", "day", "beacons"], rows: rows,
                suffix: " ON CONFLICT (site_id, day) DO UPDATE SET beacons = b.beacons + excluded.beacons"
            ) {
                try await tx.execute(statement)
            }
        }
    }

    private func writeAttribution(_ days: [SiteDay: AttributionTally], organizationId: UUID, in tx: any SQLExecutor) async throws {
        guard !days.isEmpty else { return }
        let org = SQLValue.uuid(organizationId)
        let totals: [[SQLValue]] = days.map { key, tally in
            [
                .uuid(key.siteId), org, .int(Int64(key.day)), .int(Int64(tally.total)), .int(Int64(tally.attributed)),
                .int(Int64(tally.unattributed)), .int(Int64(tally.repeatWithinWindow)), .double(tally.attributedValue),
            ]
        }
        for statement in SQL.insert(
            into: T.attributionTotalsDay, alias: "t",
            columns: ["site_id", "organization_id", "day", "total", "attributed", "unattributed", "repeat_within_window", "attributed_value"],
            rows: totals,
            suffix: """
                 ON CONFLICT (site_id, day) DO UPDATE SET total = t.total + excluded.total,
                 attributed = t.attributed + excluded.attributed, unattributed = t.unattributed + excluded.unattributed,
                 repeat_within_window = t.repeat_within_window + excluded.repeat_within_window,
                 attributed_value = t.attributed_value + excluded.attributed_value
                """
        ) {
            try await tx.execute(statement)
        }
        var credits: [[SQLValue]] = []
        for (key, tally) in days {
            for (model, notifications) in tally.credit {
                for (notificationId, credit) in notifications {
                    credits.append([
                        .uuid(key.siteId), org, .int(Int64(key.day)), .text(model), .uuid(notificationId), .double(credit.conversions),
                        .double(credit.value),
                    ])
                }
            }
        }
        guard !credits.isEmpty else { return }
        for statement in SQL.insert(
            into: T.attributionDay, alias: "a",
            columns: ["site_id", "organization_id", "day", "model", "notification_id", "conversions", "value"], rows: credits,
            suffix: """
                 ON CONFLICT (site_id, day, model, notification_id) DO UPDATE SET
                 conversions = a.conversions + excluded.conversions, value = a.value + excluded.value
                """
        ) {
            try await tx.execute(statement)
        }
    }

    static let rawColumns = [
        "site_id", "organization_id", "at_ms", "hour", "day", "visitor_day", "type", "notification_id", "variant_id", "activity_id",
        "visitor", "session", "path", "referrer", "utm_source", "utm_medium", "utm_campaign", "device", "country", "goal", "value",
        "exposure", "ab_conversion", "new_visitor", "cohort_week", "cohort_index", "previous_conversion_at", "touches",
    ]

    func insertRaw(_ events: [RawEvent], organizationId: UUID, restored: Bool = false, in tx: any SQLExecutor) async throws {
        guard !events.isEmpty else { return }
        if tx.dialect == .postgres, !restored {
            // Column by column into binary arrays, 5,000 rows a statement: the consumer's largest write, and building a
            // row of values per event first cost as much CPU as PostgreSQL's insert of it. Each chunk's arrays are built
            // while PostgreSQL inserts the chunk before: the two then run on two cores instead of taking turns.
            let chunkSize = 5_000
            var start = 0
            var arrays = Self.rawArrays(events[0..<min(chunkSize, events.count)], organizationId: organizationId)
            while let built = arrays {
                let end = min(start + chunkSize, events.count)
                async let inserted: Void = tx.execute(SQL.insert(into: T.events, columns: Self.rawColumns, arrays: built))
                arrays = end < events.count ? Self.rawArrays(events[end..<min(end + chunkSize, events.count)], organizationId: organizationId) : nil
                try await inserted
                start = end
            }
            guard start < events.count else { return }
            // Text PostgreSQL cannot store: the rows below are refused with the same error as any other write.
            return try await insertRawRows(Array(events[start...]), organizationId: organizationId, restored: restored, in: tx)
        }
        try await insertRawRows(events, organizationId: organizationId, restored: restored, in: tx)
    }

    /// The raw columns of `events` as PostgreSQL binary arrays (``rawColumns``' order), or nil when a text cannot be
    /// stored.
    static func rawArrays(_ events: ArraySlice<RawEvent>, organizationId: UUID) -> [SQLArrayColumn]? {
        let n = events.count
        var site = SQLArrayColumn(.uuid, capacity: n), org = SQLArrayColumn(.uuid, capacity: n)
        var at = SQLArrayColumn(.int8, capacity: n, bytesPerValue: 8), hour = SQLArrayColumn(.int8, capacity: n, bytesPerValue: 8)
        var day = SQLArrayColumn(.int8, capacity: n, bytesPerValue: 8), visitorDay = SQLArrayColumn(.int8, capacity: n, bytesPerValue: 8)
        var type = SQLArrayColumn(.text, capacity: n, bytesPerValue: 10)
        var notification = SQLArrayColumn(.uuid, capacity: n), variant = SQLArrayColumn(.uuid, capacity: n)
        var activity = SQLArrayColumn(.uuid, capacity: n)
        var visitor = SQLArrayColumn(.text, capacity: n, bytesPerValue: 32), session = SQLArrayColumn(.text, capacity: n, bytesPerValue: 32)
        var path = SQLArrayColumn(.text, capacity: n, bytesPerValue: 32), referrer = SQLArrayColumn(.text, capacity: n, bytesPerValue: 40)
        var utmSource = SQLArrayColumn(.text, capacity: n, bytesPerValue: 8), utmMedium = SQLArrayColumn(.text, capacity: n, bytesPerValue: 8)
        var utmCampaign = SQLArrayColumn(.text, capacity: n, bytesPerValue: 8)
        var device = SQLArrayColumn(.text, capacity: n, bytesPerValue: 8), country = SQLArrayColumn(.text, capacity: n, bytesPerValue: 2)
        var goal = SQLArrayColumn(.text, capacity: n, bytesPerValue: 0), value = SQLArrayColumn(.float8, capacity: n, bytesPerValue: 0)
        var exposure = SQLArrayColumn(.int8, capacity: n, bytesPerValue: 8), abConversion = SQLArrayColumn(.int8, capacity: n, bytesPerValue: 8)
        var newVisitor = SQLArrayColumn(.int8, capacity: n, bytesPerValue: 8)
        var cohortWeek = SQLArrayColumn(.int8, capacity: n, bytesPerValue: 0), cohortIndex = SQLArrayColumn(.int8, capacity: n, bytesPerValue: 0)
        var previousConversion = SQLArrayColumn(.int8, capacity: n, bytesPerValue: 0), touches = SQLArrayColumn(.text, capacity: n, bytesPerValue: 0)
        for index in events.indices {
            let e = events[index]
            site.append(e.siteId)
            org.append(organizationId)
            at.append(e.atMillis)
            hour.append(e.hour)
            day.append(Int64(e.day))
            visitorDay.append(Int64(e.visitorDay))
            type.append(e.type)
            notification.append(e.notificationId)
            variant.append(e.variantId)
            activity.append(e.activityId)
            visitor.append(e.visitor)
            session.append(e.session)
            path.append(e.path)
            referrer.append(e.referrer)
            utmSource.append(e.utmSource)
            utmMedium.append(e.utmMedium)
            utmCampaign.append(e.utmCampaign)
            device.append(e.device)
            country.append(e.country)
            goal.append(e.goal)
            value.append(e.value)
            exposure.append(Int64(e.exposure ? 1 : 0))
            abConversion.append(Int64(e.abConversion ? 1 : 0))
            newVisitor.append(Int64(e.newVisitor ? 1 : 0))
            cohortWeek.append(e.cohortWeek.map(Int64.init))
            cohortIndex.append(e.cohortIndex.map(Int64.init))
            previousConversion.append(e.previousConversionAt)
            touches.append(e.touches)
        }
        let arrays = [
            site, org, at, hour, day, visitorDay, type, notification, variant, activity, visitor, session, path, referrer, utmSource,
            utmMedium, utmCampaign, device, country, goal, value, exposure, abConversion, newVisitor, cohortWeek, cohortIndex,
            previousConversion, touches,
        ]
        return arrays.contains(where: \.hasUnstorableText) ? nil : arrays
    }

    private func insertRawRows(_ events: [RawEvent], organizationId: UUID, restored: Bool, in tx: any SQLExecutor) async throws {
        let org = SQLValue.uuid(organizationId)
        let rows: [[SQLValue]] = events.map { e in
            [
                .uuid(e.siteId), org, .int(e.atMillis), .int(e.hour), .int(Int64(e.day)), .int(Int64(e.visitorDay)), .text(e.type),
                Self.uuid(e.notificationId), Self.uuid(e.variantId), Self.uuid(e.activityId), .text(e.visitor), Self.text(e.session),
                Self.text(e.path), Self.text(e.referrer), Self.text(e.utmSource), Self.text(e.utmMedium), Self.text(e.utmCampaign),
                .text(e.device), Self.text(e.country), Self.text(e.goal), Self.double(e.value), .int(e.exposure ? 1 : 0),
                .int(e.abConversion ? 1 : 0), .int(e.newVisitor ? 1 : 0), Self.int(e.cohortWeek.map(Int64.init)),
                Self.int(e.cohortIndex.map(Int64.init)), Self.int(e.previousConversionAt), Self.text(e.touches),
            ]
        }
        let columns = restored ? Self.rawColumns + ["restored"] : Self.rawColumns
        let values = restored ? rows.map { $0 + [.int(1)] } : rows
        for statement in SQL.insert(into: T.events, columns: columns, rows: values) {
            try await tx.execute(statement)
        }
    }

    private func upsertRollup(_ table: Table, _ rollup: [RollupKey: Counters], organizationId: UUID, in tx: any SQLExecutor) async throws {
        guard !rollup.isEmpty else { return }
        let org = SQLValue.uuid(organizationId)
        let rows: [[SQLValue]] = rollup.map { key, c in
            [
                .uuid(key.siteId), org, .int(key.bucket), .uuid(key.notificationId), .uuid(key.variantId), .int(Int64(c.pageviews)),
                .int(Int64(c.impressions)), .int(Int64(c.hovers)), .int(Int64(c.clicks)), .int(Int64(c.closes)), .int(Int64(c.conversions)),
                .double(c.conversionValue),
            ]
        }
        for statement in SQL.insert(
            into: table, alias: "r",
            columns: [
                "site_id", "organization_id", "bucket", "notification_id", "variant_id", "pageviews", "impressions", "hovers", "clicks",
                "closes", "conversions", "conversion_value",
            ],
            rows: rows,
            suffix: """
                 ON CONFLICT (site_id, bucket, notification_id, variant_id) DO UPDATE SET
                 pageviews = r.pageviews + excluded.pageviews, impressions = r.impressions + excluded.impressions,
                 hovers = r.hovers + excluded.hovers, clicks = r.clicks + excluded.clicks, closes = r.closes + excluded.closes,
                 conversions = r.conversions + excluded.conversions, conversion_value = r.conversion_value + excluded.conversion_value
                """
        ) {
            try await tx.execute(statement)
        }
    }

    static func text(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }
    static func uuid(_ value: UUID?) -> SQLValue { value.map { .uuid($0) } ?? .null }
    static func int(_ value: Int64?) -> SQLValue { value.map { .int($0) } ?? .null }
    static func double(_ value: Double?) -> SQLValue { value.map { .double($0) } ?? .null }
}

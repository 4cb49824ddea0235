import HeraldStorage

extension AnalyticsMigrations {

    /// Rollups for the two reports that read per-visitor rows: attribution credits per day (kept by ingest for the
    /// default window and half-life) and funnel results per day (kept by the reader, recomputed for a day only when
    /// that day's visitor steps changed, which `step_days` counts).
    static let v3 = Migration(
        version: 3,
        name: "funnel and attribution rollups",
        statements: [
            .createTable(
                T.stepDays,
                columns: [
                    Column("site_id", .uuid), Column("organization_id", .uuid), Column("day", .integer),
                    Column("changes", .integer, default: .integer(0)),
                ],
                primaryKey: ["site_id", "day"], tenantIsolated: true
            ),
            .createTable(
                T.funnelDays,
                columns: [
                    Column("site_id", .uuid), Column("organization_id", .uuid), Column("day", .integer), Column("funnel", .text),
                    Column("changes", .integer), Column("visitors", .text),
                ],
                primaryKey: ["site_id", "day", "funnel"], tenantIsolated: true
            ),
            .createTable(
                T.attributionDay,
                columns: [
                    Column("site_id", .uuid), Column("organization_id", .uuid), Column("day", .integer), Column("model", .text),
                    Column("notification_id", .uuid), Column("conversions", .double, default: .double(0)),
                    Column("value", .double, default: .double(0)),
                ],
                primaryKey: ["site_id", "day", "model", "notification_id"], tenantIsolated: true
            ),
            .createTable(
                T.attributionTotalsDay,
                columns: [
                    Column("site_id", .uuid), Column("organization_id", .uuid), Column("day", .integer),
                    Column("total", .integer, default: .integer(0)), Column("attributed", .integer, default: .integer(0)),
                    Column("unattributed", .integer, default: .integer(0)), Column("repeat_within_window", .integer, default: .integer(0)),
                    Column("attributed_value", .double, default: .double(0)),
                ],
                primaryKey: ["site_id", "day"], tenantIsolated: true
            ),
            // Attribution compares each day's rollup with the day's conversions to find days kept before it existed.
            .createIndex("conversions_site_day", on: T.conversions, columns: ["site_id", "day"]),
            // Days with visitor steps from before this migration get a count, so their funnels are computed (once).
            .raw(
                sqlite: [
                    """
                    INSERT INTO analytics_step_days (site_id, organization_id, day, changes)
                    SELECT site_id, organization_id, day, COUNT(*) FROM analytics_visitor_steps GROUP BY site_id, organization_id, day
                    """
                ],
                postgres: [
                    // Owner-level statements run without a tenant; lift RLS for the copy only.
                    "ALTER TABLE analytics.step_days NO FORCE ROW LEVEL SECURITY",
                    "ALTER TABLE analytics.visitor_steps NO FORCE ROW LEVEL SECURITY",
                    """
                    INSERT INTO analytics.step_days (site_id, organization_id, day, changes)
                    SELECT site_id, organization_id, day, COUNT(*) FROM analytics.visitor_steps GROUP BY site_id, organization_id, day
                    """,
                    "ALTER TABLE analytics.visitor_steps FORCE ROW LEVEL SECURITY",
                    "ALTER TABLE analytics.step_days FORCE ROW LEVEL SECURITY",
                ]
            ),
        ]
    )
}

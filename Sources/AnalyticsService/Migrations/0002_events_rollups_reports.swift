import HeraldStorage

extension AnalyticsMigrations {
    typealias T = AnalyticsTables

    /// The raw event columns, shared by both dialects' definitions.
    static let eventColumns: [(name: String, sqlite: String, postgres: String)] = [
        ("site_id", "TEXT NOT NULL", "UUID NOT NULL"),
        ("organization_id", "TEXT NOT NULL", "UUID NOT NULL"),
        ("at_ms", "INTEGER NOT NULL", "BIGINT NOT NULL"),
        ("hour", "INTEGER NOT NULL", "BIGINT NOT NULL"),
        ("day", "INTEGER NOT NULL", "INTEGER NOT NULL"),
        ("visitor_day", "INTEGER NOT NULL", "INTEGER NOT NULL"),
        ("type", "TEXT NOT NULL", "TEXT NOT NULL"),
        ("notification_id", "TEXT", "UUID"),
        ("variant_id", "TEXT", "UUID"),
        ("activity_id", "TEXT", "UUID"),
        ("visitor", "TEXT NOT NULL", "TEXT NOT NULL"),
        ("session", "TEXT", "TEXT"),
        ("path", "TEXT", "TEXT"),
        ("referrer", "TEXT", "TEXT"),
        ("utm_source", "TEXT", "TEXT"),
        ("utm_medium", "TEXT", "TEXT"),
        ("utm_campaign", "TEXT", "TEXT"),
        ("device", "TEXT NOT NULL", "TEXT NOT NULL"),
        ("country", "TEXT", "TEXT"),
        ("goal", "TEXT", "TEXT"),
        ("value", "REAL", "DOUBLE PRECISION"),
        ("exposure", "INTEGER NOT NULL DEFAULT 0", "SMALLINT NOT NULL DEFAULT 0"),
        ("ab_conversion", "INTEGER NOT NULL DEFAULT 0", "SMALLINT NOT NULL DEFAULT 0"),
        ("new_visitor", "INTEGER NOT NULL DEFAULT 0", "SMALLINT NOT NULL DEFAULT 0"),
        ("cohort_week", "INTEGER", "INTEGER"),
        ("cohort_index", "INTEGER", "INTEGER"),
        ("previous_conversion_at", "INTEGER", "BIGINT"),
        ("touches", "TEXT", "TEXT"),
        ("restored", "INTEGER NOT NULL DEFAULT 0", "SMALLINT NOT NULL DEFAULT 0"),
    ]

    static var postgresEventsTable: String {
        "CREATE TABLE analytics.events (\n    seq BIGSERIAL,\n" + eventColumns.map { "    \($0.name) \($0.postgres)" }.joined(separator: ",\n")
    }

    /// Counters, the same in every rollup.
    static let counterColumns: [Column] = [
        Column("pageviews", .integer, default: .integer(0)), Column("impressions", .integer, default: .integer(0)),
        Column("hovers", .integer, default: .integer(0)), Column("clicks", .integer, default: .integer(0)),
        Column("closes", .integer, default: .integer(0)), Column("conversions", .integer, default: .integer(0)),
        Column("conversion_value", .double, default: .double(0)),
    ]

    static func rollup(_ table: Table) -> SchemaStatement {
        .createTable(
            table,
            columns: [
                Column("site_id", .uuid), Column("organization_id", .uuid), Column("bucket", .integer), Column("notification_id", .uuid),
                Column("variant_id", .uuid),
            ] + counterColumns,
            primaryKey: ["site_id", "bucket", "notification_id", "variant_id"], tenantIsolated: true
        )
    }

    /// Raw events, rollups by minute, hour and day, visitor steps, conversions, cohorts, experiments, exports,
    /// scheduled reports, archives. The first version's daily counters become day rollups.
    static let v2 = Migration(
        version: 2,
        name: "raw events, rollups, visitor steps, cohorts, experiments, exports, scheduled reports, archives",
        statements: [
            .raw(
                sqlite: [
                    "CREATE TABLE analytics_events (\n    seq INTEGER PRIMARY KEY,\n"
                        + eventColumns.map { "    \($0.name) \($0.sqlite)" }.joined(separator: ",\n") + "\n)",
                    "CREATE INDEX analytics_events_site_time ON analytics_events (site_id, at_ms)",
                    "CREATE INDEX analytics_events_organization_seq ON analytics_events (organization_id, seq)",
                ],
                postgres: [
                    // Where TimescaleDB is installed the raw table is a hypertable with daily chunks; otherwise a
                    // table partitioned by day (partitions are created ahead by the maintenance task) with a
                    // default partition so an insert never fails for want of one.
                    """
                    DO $herald$
                    BEGIN
                      IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
                        EXECUTE $ddl$\(postgresEventsTable)\n)$ddl$;
                        PERFORM create_hypertable('analytics.events', 'at_ms', chunk_time_interval => 86400000);
                      ELSE
                        EXECUTE $ddl$\(postgresEventsTable)\n) PARTITION BY RANGE (at_ms)$ddl$;
                        EXECUTE 'CREATE TABLE analytics.events_default PARTITION OF analytics.events DEFAULT';
                      END IF;
                    END
                    $herald$
                    """,
                    "CREATE INDEX events_site_time ON analytics.events (site_id, at_ms)",
                    "CREATE INDEX events_organization_seq ON analytics.events (organization_id, seq)",
                    "ALTER TABLE analytics.events ENABLE ROW LEVEL SECURITY",
                    "ALTER TABLE analytics.events FORCE ROW LEVEL SECURITY",
                    "CREATE POLICY tenant_isolation ON analytics.events USING (organization_id = \(TenantIsolation.currentOrganization))",
                ]
            ),
            rollup(T.rollupMinute), rollup(T.rollupHour), rollup(T.rollupDay),
            .createTable(
                T.visitorSteps,
                columns: [
                    Column("site_id", .uuid), Column("organization_id", .uuid), Column("day", .integer), Column("visitor", .text),
                    Column("step", .text), Column("first_at", .integer), Column("written_by", .integer),
                ],
                primaryKey: ["site_id", "day", "visitor", "step"], tenantIsolated: true
            ),
            .createIndex("visitor_steps_day", on: T.visitorSteps, columns: ["day"]),
            .createTable(
                T.uniquesDay,
                columns: [
                    Column("site_id", .uuid), Column("organization_id", .uuid), Column("day", .integer), Column("scope", .text),
                    Column("visitors", .integer, default: .integer(0)),
                ],
                primaryKey: ["site_id", "day", "scope"], tenantIsolated: true
            ),
            .createTable(
                T.conversions,
                columns: [
                    Column("id", .uuid), Column("site_id", .uuid), Column("organization_id", .uuid), Column("at_ms", .integer),
                    Column("day", .integer), Column("goal", .text, nullable: true), Column("value", .double, nullable: true),
                    Column("notification_id", .uuid, nullable: true), Column("variant_id", .uuid, nullable: true),
                    Column("previous_conversion_at", .integer, nullable: true), Column("touches", .text, nullable: true),
                ],
                primaryKey: ["id"], tenantIsolated: true
            ),
            .createIndex("conversions_site_time", on: T.conversions, columns: ["site_id", "at_ms"]),
            .createTable(
                T.cohorts,
                columns: [
                    Column("site_id", .uuid), Column("organization_id", .uuid), Column("cohort_week", .integer),
                    Column("week_index", .integer), Column("new_visitors", .integer, default: .integer(0)),
                    Column("conversions", .integer, default: .integer(0)), Column("conversion_value", .double, default: .double(0)),
                ],
                primaryKey: ["site_id", "cohort_week", "week_index"], tenantIsolated: true
            ),
            .createTable(
                T.experimentsDay,
                columns: [
                    Column("site_id", .uuid), Column("organization_id", .uuid), Column("day", .integer), Column("notification_id", .uuid),
                    Column("variant_id", .uuid), Column("exposures", .integer, default: .integer(0)),
                    Column("conversions", .integer, default: .integer(0)),
                ],
                primaryKey: ["site_id", "day", "notification_id", "variant_id"], tenantIsolated: true
            ),
            .createTable(
                T.notifications,
                columns: [
                    Column("notification_id", .uuid), Column("site_id", .uuid), Column("organization_id", .uuid), Column("name", .text),
                    Column("status", .text), Column("variants", .json), Column("updated_at", .timestamp),
                ],
                primaryKey: ["notification_id"], tenantIsolated: true
            ),
            .createIndex("notifications_site", on: T.notifications, columns: ["site_id"]),
            .createTable(
                T.sites,
                columns: [
                    Column("site_id", .uuid), Column("organization_id", .uuid), Column("name", .text), Column("timezone", .text),
                    Column("updated_at", .timestamp),
                ],
                primaryKey: ["site_id"], tenantIsolated: true
            ),
            .createTable(
                T.botsDay,
                columns: [
                    Column("site_id", .uuid), Column("organization_id", .uuid), Column("day", .integer),
                    Column("beacons", .integer, default: .integer(0)),
                ],
                primaryKey: ["site_id", "day"], tenantIsolated: true
            ),
            .createTable(
                T.exports,
                columns: [
                    Column("id", .uuid), Column("site_id", .uuid), Column("organization_id", .uuid), Column("report", .text),
                    Column("format", .text), Column("parameters", .json), Column("status", .text), Column("progress", .double),
                    Column("rows", .integer, default: .integer(0)), Column("bytes", .integer, default: .integer(0)),
                    Column("chunks", .integer, default: .integer(0)), Column("file_name", .text, nullable: true),
                    Column("error", .text, nullable: true), Column("created_by", .text), Column("created_at", .timestamp),
                    Column("started_at", .timestamp, nullable: true), Column("finished_at", .timestamp, nullable: true),
                    Column("expires_at", .timestamp),
                ],
                primaryKey: ["id"], tenantIsolated: true
            ),
            .createIndex("exports_site", on: T.exports, columns: ["site_id", "created_at"]),
            .createTable(
                T.exportChunks,
                columns: [Column("export_id", .uuid), Column("organization_id", .uuid), Column("seq", .integer), Column("data", .bytes)],
                primaryKey: ["export_id", "seq"], tenantIsolated: true
            ),
            .createTable(
                T.scheduledReports,
                columns: [
                    Column("id", .uuid), Column("site_id", .uuid), Column("organization_id", .uuid), Column("name", .text),
                    Column("report", .text), Column("format", .text), Column("frequency", .text), Column("hour", .integer),
                    Column("weekday", .integer, nullable: true), Column("month_day", .integer, nullable: true), Column("recipients", .json),
                    Column("parameters", .json), Column("enabled", .boolean), Column("next_run_at", .timestamp),
                    Column("last_run_at", .timestamp, nullable: true), Column("last_status", .text, nullable: true),
                    Column("created_by", .text), Column("created_at", .timestamp), Column("updated_at", .timestamp),
                ],
                primaryKey: ["id"], tenantIsolated: true
            ),
            .createIndex("scheduled_reports_site", on: T.scheduledReports, columns: ["site_id", "created_at"]),
            .createTable(
                T.reportDeliveries,
                columns: [
                    Column("id", .uuid), Column("report_id", .uuid), Column("site_id", .uuid), Column("organization_id", .uuid),
                    Column("scheduled_for", .timestamp), Column("period_from", .integer), Column("period_to", .integer),
                    Column("triggered_by", .text), Column("attempts", .integer, default: .integer(0)), Column("status", .text),
                    Column("error", .text, nullable: true), Column("recipients", .integer, default: .integer(0)),
                    Column("message_id", .text, nullable: true), Column("next_attempt_at", .timestamp, nullable: true),
                    Column("created_at", .timestamp), Column("updated_at", .timestamp), Column("sent_at", .timestamp, nullable: true),
                ],
                primaryKey: ["id"], tenantIsolated: true
            ),
            .createIndex("report_deliveries_report", on: T.reportDeliveries, columns: ["report_id", "created_at"]),
            // Due work across tenants (exports, report runs, sends): identifiers and times only, for the workers.
            .createTable(
                Table("analytics", "jobs"),
                columns: [
                    Column("id", .text), Column("kind", .text), Column("organization_id", .uuid), Column("due_at", .timestamp),
                    Column("lease_until", .timestamp, nullable: true), Column("attempts", .integer, default: .integer(0)),
                ],
                primaryKey: ["id"], tenantIsolated: false
            ),
            .createIndex("jobs_due", on: Table("analytics", "jobs"), columns: ["due_at"]),
            .createTable(
                T.archives,
                columns: [
                    Column("day", .integer), Column("organization_id", .uuid), Column("location", .text), Column("rows", .integer),
                    Column("bytes", .integer), Column("archived_at", .timestamp), Column("restored_at", .timestamp, nullable: true),
                    Column("restored_rows", .integer, default: .integer(0)),
                ],
                primaryKey: ["day", "organization_id", "location"], tenantIsolated: false
            ),
            // The organizations Analytics holds data for, so maintenance can visit each tenant's rows.
            .createTable(
                T.tenants,
                columns: [Column("organization_id", .uuid), Column("first_seen_at", .timestamp)],
                primaryKey: ["organization_id"], tenantIsolated: false
            ),
            .createTable(
                T.shipping,
                columns: [Column("target", .text), Column("last_seq", .integer), Column("updated_at", .timestamp)],
                primaryKey: ["target"], tenantIsolated: false
            ),
            // The first version counted UTC days; they become day rollups (days in UTC before the upgrade).
            .raw(
                sqlite: [
                    """
                    INSERT INTO analytics_rollup_day (site_id, organization_id, bucket, notification_id, variant_id,
                        impressions, hovers, clicks, closes, conversions)
                    SELECT site_id, organization_id, CAST(REPLACE(day, '-', '') AS INTEGER), notification_id, variant_id,
                        impressions, hovers, clicks, closes, conversions
                    FROM analytics_daily_counts
                    """,
                    "DROP TABLE analytics_daily_counts",
                ],
                postgres: [
                    // Owner-level statements run without a tenant; lift RLS for the copy only.
                    "ALTER TABLE analytics.rollup_day NO FORCE ROW LEVEL SECURITY",
                    "ALTER TABLE analytics.daily_counts NO FORCE ROW LEVEL SECURITY",
                    """
                    INSERT INTO analytics.rollup_day (site_id, organization_id, bucket, notification_id, variant_id,
                        impressions, hovers, clicks, closes, conversions)
                    SELECT site_id, organization_id, CAST(to_char(day, 'YYYYMMDD') AS BIGINT), notification_id, variant_id,
                        impressions, hovers, clicks, closes, conversions
                    FROM analytics.daily_counts
                    """,
                    "ALTER TABLE analytics.rollup_day FORCE ROW LEVEL SECURITY",
                    "DROP TABLE analytics.daily_counts",
                ]
            ),
        ]
    )
}

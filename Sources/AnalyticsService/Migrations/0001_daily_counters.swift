import HeraldStorage

extension AnalyticsMigrations {
    /// Landed: never edit (its checksum is recorded by every deployment); add a new migration instead.
    static let v1 = Migration(
        version: 1,
        name: "daily counters",
        sqlite: [
            """
            CREATE TABLE analytics_daily_counts (
                site_id TEXT NOT NULL,
                organization_id TEXT NOT NULL,
                day TEXT NOT NULL,
                notification_id TEXT NOT NULL,
                variant_id TEXT NOT NULL,
                impressions INTEGER NOT NULL DEFAULT 0,
                hovers INTEGER NOT NULL DEFAULT 0,
                clicks INTEGER NOT NULL DEFAULT 0,
                closes INTEGER NOT NULL DEFAULT 0,
                conversions INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (site_id, day, notification_id, variant_id)
            )
            """
        ],
        postgres: [
            "CREATE SCHEMA IF NOT EXISTS analytics",
            """
            CREATE TABLE analytics.daily_counts (
                site_id UUID NOT NULL,
                organization_id UUID NOT NULL,
                day DATE NOT NULL,
                notification_id UUID NOT NULL,
                variant_id UUID NOT NULL,
                impressions BIGINT NOT NULL DEFAULT 0,
                hovers BIGINT NOT NULL DEFAULT 0,
                clicks BIGINT NOT NULL DEFAULT 0,
                closes BIGINT NOT NULL DEFAULT 0,
                conversions BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (site_id, day, notification_id, variant_id)
            )
            """,
            "ALTER TABLE analytics.daily_counts ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE analytics.daily_counts FORCE ROW LEVEL SECURITY",
            """
            CREATE POLICY tenant_isolation ON analytics.daily_counts
            USING (organization_id = NULLIF(current_setting('herald.org_id', true), '')::uuid)
            """,
        ]
    )
}

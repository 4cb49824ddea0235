import HeraldStorage

/// The Analytics service's tables (PostgreSQL schema `analytics`). Nothing else reads them.
enum AnalyticsTables {
    /// Raw events (non-bot beacons), kept for the raw retention, then archived and dropped. Partitioned by day
    /// in PostgreSQL. Each row carries the decisions ingest made (exposure, cohort membership) so every report
    /// can be recomputed from raw rows alone, which is what the ClickHouse reader does.
    static let events = Table("analytics", "events")
    /// Counters per bucket, notification and variant: minutes (UTC), hours (site-local), days (site-local).
    static let rollupMinute = Table("analytics", "rollup_minute")
    static let rollupHour = Table("analytics", "rollup_hour")
    static let rollupDay = Table("analytics", "rollup_day")
    /// Each pseudonymous visitor's first time at each step of a day (`seen`, `i:<notification>`, `k`, `c`, …):
    /// unique visitors, funnels and per-day A/B exposures come from here.
    static let visitorSteps = Table("analytics", "visitor_steps")
    /// Unique visitors per day and scope (`""` the site, `n:<id>` a notification, `v:<id>:<variant>` a variant).
    static let uniquesDay = Table("analytics", "uniques_day")
    /// Every conversion with the touches its widget reported, for attribution (kept like day rollups).
    static let conversions = Table("analytics", "conversions")
    /// Visitors by the week they first saw a notification, and their conversions in each following week.
    static let cohorts = Table("analytics", "cohorts")
    /// How many visitor-step rows each day's ingest wrote or moved: a funnel result kept for a day is reused only
    /// while this count is what it was when the result was computed.
    static let stepDays = Table("analytics", "step_days")
    /// Funnel results per day, keyed by what was asked (scope, steps, window), tagged with the day's `step_days`.
    static let funnelDays = Table("analytics", "funnel_days")
    /// Attribution credits per conversion day, model and notification, for the default window and half-life.
    static let attributionDay = Table("analytics", "attribution_day")
    /// The same days' conversion counts (total, attributed, unattributed, repeats within the window).
    static let attributionTotalsDay = Table("analytics", "attribution_totals_day")
    /// A/B exposures and conversions per day and variant.
    static let experimentsDay = Table("analytics", "experiments_day")
    /// The service's copy of each notification (from notification events): its name, and its A/B test's
    /// variants and weights (the first arm is the control).
    static let notifications = Table("analytics", "notifications")
    /// The service's copy of each site (from site events): its time zone for reports.
    static let sites = Table("analytics", "sites")
    /// Beacons from self-declared crawlers, counted apart.
    static let botsDay = Table("analytics", "bots_day")
    /// Export jobs and their output, in chunks so large files stream and survive restarts.
    static let exports = Table("analytics", "exports")
    static let exportChunks = Table("analytics", "export_chunks")
    static let scheduledReports = Table("analytics", "scheduled_reports")
    static let reportDeliveries = Table("analytics", "report_deliveries")
    /// Which days of raw events were archived (and restored), where to.
    static let archives = Table("analytics", "archives")
    /// Every organization with analytics data (identifiers only), for maintenance across tenants.
    static let tenants = Table("analytics", "tenants")
    /// Due work across tenants (exports, scheduled reports, their sends, maintenance): identifiers and times only.
    static let jobs = Table("analytics", "jobs")
    /// How far raw events were shipped to ClickHouse.
    static let shipping = Table("analytics", "shipping")

    /// What Billing meters as an organization's analytics storage: its raw events, by far the largest table (rollups
    /// are bounded by their retention).
    static let footprint = StorageFootprint([
        .init(
            events, key: "organization_id", directory: tenants,
            variableColumns: [
                "type", "visitor", "session", "path", "referrer", "utm_source", "utm_medium", "utm_campaign", "device", "country", "goal", "touches",
            ],
            fixedBytesPerRow: 300
        )
    ])
}

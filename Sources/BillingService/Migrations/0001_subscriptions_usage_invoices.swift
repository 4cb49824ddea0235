import HeraldStorage

extension BillingMigrations {
    /// Landed: never edit; add a new migration instead.
    static let v1 = Migration(
        version: 1,
        name: "subscriptions, usage, alerts, invoices, trial extensions",
        statements: [
            .createTable(
                BillingTables.accounts,
                columns: [
                    Column("organization_id", .uuid), Column("plan_id", .text), Column("interval", .text), Column("status", .text),
                    Column("trial_ends_at", .timestamp, nullable: true), Column("current_period_start", .timestamp),
                    Column("current_period_end", .timestamp), Column("pending_plan_id", .text, nullable: true),
                    Column("pending_interval", .text, nullable: true), Column("past_due_since", .timestamp, nullable: true),
                    Column("delivery_paused", .boolean, default: .boolean(false)), Column("pause_reason", .text, nullable: true),
                    Column("billing_email", .bytes, nullable: true), Column("stripe_customer_id", .text, nullable: true),
                    Column("stripe_subscription_id", .text, nullable: true), Column("stripe_item_id", .text, nullable: true),
                    Column("stripe_plan_id", .text, nullable: true),
                    Column("stripe_synced_at", .integer, default: .integer(0)), Column("created_at", .timestamp),
                    Column("updated_at", .timestamp),
                ],
                primaryKey: ["organization_id"], tenantIsolated: true
            ),
            .createIndex("billing_accounts_period_end", on: BillingTables.accounts, columns: ["current_period_end"]),
            .createTable(
                BillingTables.customers,
                columns: [Column("stripe_customer_id", .text), Column("organization_id", .uuid)],
                primaryKey: ["stripe_customer_id"], tenantIsolated: false
            ),
            .createTable(
                BillingTables.sites,
                columns: [Column("site_id", .uuid), Column("organization_id", .uuid), Column("created_at", .timestamp)],
                primaryKey: ["site_id"], tenantIsolated: true
            ),
            .createTable(
                BillingTables.campaigns,
                columns: [
                    Column("notification_id", .uuid), Column("organization_id", .uuid), Column("site_id", .uuid),
                    Column("published", .boolean), Column("updated_at", .timestamp),
                ],
                primaryKey: ["notification_id"], tenantIsolated: true
            ),
            .createTable(
                BillingTables.usage,
                columns: [
                    Column("organization_id", .uuid), Column("period_start", .timestamp), Column("site_id", .uuid),
                    Column("impressions", .integer, default: .integer(0)),
                ],
                primaryKey: ["organization_id", "period_start", "site_id"], tenantIsolated: true
            ),
            .createTable(
                BillingTables.storage,
                columns: [
                    Column("organization_id", .uuid), Column("service", .text), Column("bytes", .integer), Column("measured_at", .timestamp),
                ],
                primaryKey: ["organization_id", "service"], tenantIsolated: true
            ),
            .createTable(
                BillingTables.alerts,
                columns: [
                    Column("organization_id", .uuid), Column("period_start", .timestamp), Column("metric", .text),
                    Column("threshold", .integer), Column("usage", .integer), Column("quota", .integer), Column("created_at", .timestamp),
                ],
                primaryKey: ["organization_id", "period_start", "metric", "threshold"], tenantIsolated: true
            ),
            .createTable(
                BillingTables.invoices,
                columns: [
                    Column("id", .text), Column("organization_id", .uuid), Column("number", .text, nullable: true), Column("status", .text),
                    Column("amount_due", .integer), Column("amount_paid", .integer), Column("currency", .text),
                    Column("period_start", .timestamp, nullable: true), Column("period_end", .timestamp, nullable: true),
                    Column("hosted_url", .text, nullable: true), Column("created_at", .timestamp), Column("updated_at", .timestamp),
                    Column("stripe_event_created", .integer, default: .integer(0)),
                ],
                primaryKey: ["id"], tenantIsolated: true
            ),
            .createIndex("billing_invoices_org_created", on: BillingTables.invoices, columns: ["organization_id", "created_at"]),
            .createTable(
                BillingTables.stripeEvents,
                columns: [Column("id", .text), Column("type", .text), Column("received_at", .timestamp)],
                primaryKey: ["id"], tenantIsolated: false
            ),
            .createTable(
                BillingTables.trialExtensions,
                columns: [
                    Column("id", .uuid), Column("organization_id", .uuid), Column("site_id", .uuid), Column("requested_by", .uuid, nullable: true),
                    Column("days", .integer), Column("reason", .text), Column("status", .text), Column("decided_by", .text, nullable: true),
                    Column("decision_note", .text, nullable: true), Column("created_at", .timestamp),
                    Column("decided_at", .timestamp, nullable: true),
                ],
                primaryKey: ["id"], tenantIsolated: false
            ),
        ]
    )
}

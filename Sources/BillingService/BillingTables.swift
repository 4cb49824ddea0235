import HeraldStorage

/// The Billing service's tables (PostgreSQL schema `billing`).
enum BillingTables {
    /// One subscription per organization: plan, status, period, Stripe ids.
    static let accounts = Table("billing", "accounts")
    /// Stripe customer → organization, resolved before the tenant is known (webhooks).
    static let customers = Table("billing", "customers")
    /// The organization's sites, from the Users service's events.
    static let sites = Table("billing", "sites")
    /// Each notification and whether it is published, from the Notifications service's events.
    static let campaigns = Table("billing", "campaigns")
    /// Impressions per organization, site and period, counted from beacon events.
    static let usage = Table("billing", "usage")
    /// Bytes each service last reported for the organization.
    static let storage = Table("billing", "storage")
    /// Thresholds already announced in a period: each is sent once.
    static let alerts = Table("billing", "alerts")
    static let invoices = Table("billing", "invoices")
    /// Stripe event ids already applied (webhooks are delivered at least once).
    static let stripeEvents = Table("billing", "stripe_events")
    /// Not tenant-isolated: the operator's queue spans organizations. Every tenant query names its organization.
    static let trialExtensions = Table("billing", "trial_extensions")
}

enum BillingMigrations {
    static let set = MigrationSet(owner: "billing", migrations: [v1])
}

import HeraldStorage

/// The Notifications service's tables (PostgreSQL schema `notifications`).
enum NotificationTables {
    /// The service's own copy of each site, kept from the Users service's site events.
    static let sites = Table("notifications", "sites")
    /// Public key → site, resolved before the tenant is known (widget requests).
    static let siteKeys = Table("notifications", "site_keys")
    static let activities = Table("notifications", "activities")
    static let templates = Table("notifications", "templates")
    static let notifications = Table("notifications", "notifications")
    static let targetingRules = Table("notifications", "targeting_rules")
    static let abTests = Table("notifications", "ab_tests")
    static let abTestVariants = Table("notifications", "ab_test_variants")
    /// One random salt per site-local day for visitor pseudonyms; deleted two days later.
    static let visitorSalts = Table("notifications", "visitor_salts")
}

extension NotificationsService {

    public static let migrations = MigrationSet(
        owner: "notifications",
        migrations: [
            NotificationsMigrations.v1,
            NotificationsMigrations.v2,
            NotificationsMigrations.v3,
        ]
    )
}

/// The service's migrations, one file each under `Migrations/`.
enum NotificationsMigrations {
    /// Tenant tables whose row-level security policy was written before `tenancy.current_organization()`.
    static let landedTenantTables: [Table] = [
        NotificationTables.sites, NotificationTables.activities, NotificationTables.templates, NotificationTables.notifications,
        NotificationTables.targetingRules, NotificationTables.abTests, NotificationTables.abTestVariants,
    ]
}

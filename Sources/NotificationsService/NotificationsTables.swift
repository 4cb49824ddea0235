import HeraldStorage

/// The Notifications service's tables (PostgreSQL schema `notifications`).
enum NotificationsTables {
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
    /// Billing's decision per organization: popups paused (quota or payment) and the active-campaign limit.
    static let deliveryHolds = Table("notifications", "delivery_holds")
    /// Email recipients who opted in to a site's notifications by email (address encrypted), and who left.
    static let emailRecipients = Table("notifications", "email_recipients")
    /// Browsers that subscribed to a site's web push notifications (endpoint and keys encrypted).
    static let pushSubscriptions = Table("notifications", "push_subscriptions")
    /// Per notification and channel (`email`, `push`): whether new activities it shows go out there, and the title.
    static let channelSettings = Table("notifications", "channel_settings")
    /// One email or push per activity, notification and recipient or subscription, with its attempts and outcome.
    static let emailDeliveries = Table("notifications", "email_deliveries")
    static let pushDeliveries = Table("notifications", "push_deliveries")
    /// Due deliveries across tenants (identifiers and times only), claimed with a lease by each channel's sender.
    static let emailQueue = Table("notifications", "email_queue")
    static let pushQueue = Table("notifications", "push_queue")

    /// What Billing meters as an organization's storage with Notifications: the activity history, which grows.
    static let footprint = StorageFootprint([
        .init(
            activities, key: "site_id", directory: siteKeys,
            variableColumns: [
                "type", "first_name", "city", "region", "country", "product_name", "product_url", "image_url", "last_name_encrypted",
                "email_encrypted", "provenance",
            ],
            fixedBytesPerRow: 140
        )
    ])
}

import HeraldStorage

extension NotificationsMigrations {
    /// Delivery channels beyond the widget: email to opted-in recipients (address encrypted, a keyed hash for
    /// uniqueness) and web push to browsers' subscriptions (endpoint and keys encrypted); each notification's
    /// settings per channel; one delivery per activity, notification and recipient or subscription; and per channel a
    /// queue of due deliveries the sender claims across tenants.
    static let v5 = Migration(
        version: 5,
        name: "delivery channels: email and web push",
        statements: [
            .createTable(
                NotificationsTables.emailRecipients,
                columns: [
                    Column("id", .uuid), Column("site_id", .uuid), Column("organization_id", .uuid), Column("email_index", .bytes),
                    Column("email_encrypted", .bytes), Column("status", .text), Column("status_reason", .text, nullable: true),
                    Column("created_at", .timestamp), Column("updated_at", .timestamp),
                ],
                primaryKey: ["id"], tenantIsolated: true
            ),
            .createIndex("email_recipients_address", on: NotificationsTables.emailRecipients, columns: ["site_id", "email_index"], unique: true),
            .createTable(
                NotificationsTables.pushSubscriptions,
                columns: [
                    Column("id", .uuid), Column("site_id", .uuid), Column("organization_id", .uuid), Column("endpoint_index", .bytes),
                    Column("subscription_encrypted", .bytes), Column("status", .text), Column("status_reason", .text, nullable: true),
                    Column("created_at", .timestamp), Column("updated_at", .timestamp),
                ],
                primaryKey: ["id"], tenantIsolated: true
            ),
            .createIndex(
                "push_subscriptions_endpoint", on: NotificationsTables.pushSubscriptions, columns: ["site_id", "endpoint_index"], unique: true),
            .createTable(
                NotificationsTables.channelSettings,
                columns: [
                    Column("notification_id", .uuid), Column("channel", .text), Column("site_id", .uuid), Column("organization_id", .uuid),
                    Column("enabled", .boolean), Column("title", .text), Column("updated_at", .timestamp),
                ],
                primaryKey: ["notification_id", "channel"], tenantIsolated: true
            ),
            .createIndex("channel_settings_site", on: NotificationsTables.channelSettings, columns: ["site_id", "channel"]),
        ] + deliveries(NotificationsTables.emailDeliveries, queue: NotificationsTables.emailQueue, target: "recipient_id", prefix: "email")
            + deliveries(NotificationsTables.pushDeliveries, queue: NotificationsTables.pushQueue, target: "subscription_id", prefix: "push")
    )

    /// A channel's deliveries (one per activity, notification and target) and its queue of due ones.
    private static func deliveries(_ table: Table, queue: Table, target: String, prefix: String) -> [SchemaStatement] {
        [
            .createTable(
                table,
                columns: [
                    Column("id", .uuid), Column("site_id", .uuid), Column("organization_id", .uuid), Column("notification_id", .uuid),
                    Column("activity_id", .uuid), Column(target, .uuid), Column("title", .text), Column("body", .text),
                    Column("url", .text, nullable: true),
                    Column("status", .text), Column("attempts", .integer, default: .integer(0)),
                    Column("next_attempt_at", .timestamp, nullable: true), Column("last_error", .text, nullable: true),
                    Column("provider_message_id", .text, nullable: true), Column("created_at", .timestamp),
                    Column("sent_at", .timestamp, nullable: true),
                ],
                primaryKey: ["id"], tenantIsolated: true
            ),
            .createIndex("\(prefix)_deliveries_once", on: table, columns: ["activity_id", "notification_id", target], unique: true),
            .createIndex("\(prefix)_deliveries_site_time", on: table, columns: ["site_id", "created_at"]),
            .createIndex("\(prefix)_deliveries_site_sent", on: table, columns: ["site_id", "sent_at"]),
            .createTable(
                queue,
                columns: [
                    Column("delivery_id", .uuid), Column("organization_id", .uuid), Column("next_attempt_at", .timestamp),
                    Column("lease_until", .timestamp, nullable: true),
                ],
                primaryKey: ["delivery_id"], tenantIsolated: false
            ),
            .createIndex("\(prefix)_queue_due", on: queue, columns: ["next_attempt_at"]),
        ]
    }
}

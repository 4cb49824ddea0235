import HeraldStorage

extension NotificationsMigrations {
    /// The email channel: opted-in recipients per site (address encrypted, a keyed hash for uniqueness), each
    /// notification's email settings, one delivery per activity, notification and recipient, and the queue of due
    /// deliveries the sender claims across tenants.
    static let v5 = Migration(
        version: 5,
        name: "email channel",
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
                NotificationsTables.emailSettings,
                columns: [
                    Column("notification_id", .uuid), Column("site_id", .uuid), Column("organization_id", .uuid), Column("enabled", .boolean),
                    Column("subject", .text), Column("updated_at", .timestamp),
                ],
                primaryKey: ["notification_id"], tenantIsolated: true
            ),
            .createTable(
                NotificationsTables.emailDeliveries,
                columns: [
                    Column("id", .uuid), Column("site_id", .uuid), Column("organization_id", .uuid), Column("notification_id", .uuid),
                    Column("activity_id", .uuid), Column("recipient_id", .uuid), Column("subject", .text), Column("body", .text),
                    Column("status", .text), Column("attempts", .integer, default: .integer(0)),
                    Column("next_attempt_at", .timestamp, nullable: true), Column("last_error", .text, nullable: true),
                    Column("provider_message_id", .text, nullable: true), Column("created_at", .timestamp),
                    Column("sent_at", .timestamp, nullable: true),
                ],
                primaryKey: ["id"], tenantIsolated: true
            ),
            .createIndex(
                "email_deliveries_once", on: NotificationsTables.emailDeliveries, columns: ["activity_id", "notification_id", "recipient_id"],
                unique: true
            ),
            .createIndex("email_deliveries_site_time", on: NotificationsTables.emailDeliveries, columns: ["site_id", "created_at"]),
            .createIndex("email_deliveries_site_sent", on: NotificationsTables.emailDeliveries, columns: ["site_id", "sent_at"]),
            .createTable(
                NotificationsTables.emailQueue,
                columns: [
                    Column("delivery_id", .uuid), Column("organization_id", .uuid), Column("next_attempt_at", .timestamp),
                    Column("lease_until", .timestamp, nullable: true),
                ],
                primaryKey: ["delivery_id"], tenantIsolated: false
            ),
            .createIndex("email_queue_due", on: NotificationsTables.emailQueue, columns: ["next_attempt_at"]),
        ]
    )
}

import HeraldStorage

extension NotificationsMigrations {
    /// Billing's decision per organization: whether popups may be shown, and how many may be published at once.
    static let v4 = Migration(
        version: 4,
        name: "delivery holds",
        statements: [
            .createTable(
                NotificationsTables.deliveryHolds,
                columns: [
                    Column("organization_id", .uuid), Column("paused", .boolean), Column("reason", .text, nullable: true),
                    Column("max_active_campaigns", .integer, nullable: true), Column("decided_at", .timestamp),
                ],
                primaryKey: ["organization_id"], tenantIsolated: true
            )
        ]
    )
}

import HeraldStorage

extension NotificationsMigrations {
    /// Daily salts for visitor pseudonyms (not tenant data: one salt serves every site, mixed with the site id).
    static let v3 = Migration(
        version: 3,
        name: "visitor salts",
        statements: [
            .createTable(
                NotificationsTables.visitorSalts,
                columns: [Column("day", .integer), Column("salt", .bytes), Column("created_at", .timestamp)],
                primaryKey: ["day"], tenantIsolated: false
            )
        ]
    )
}

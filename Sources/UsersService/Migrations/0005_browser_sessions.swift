import HeraldStorage

extension UsersMigrations {
    /// The dashboard's cookie sessions: the SHA-256 of each cookie's secret and the Herald session it stands for.
    static let v5 = Migration(
        version: 5,
        name: "browser sessions for the dashboard's cookie",
        statements: [
            .createTable(
                UsersTables.browserSessions,
                columns: [Column("secret_hash", .bytes), Column("session_id", .uuid), Column("created_at", .timestamp)],
                primaryKey: ["secret_hash"], tenantIsolated: false
            ),
            .createIndex("browser_sessions_session", on: UsersTables.browserSessions, columns: ["session_id"]),
        ]
    )
}

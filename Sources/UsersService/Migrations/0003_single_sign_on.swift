import HeraldStorage

extension UsersMigrations {
    /// Single sign-on through an organization's OpenID Connect provider: the connection (client secret encrypted),
    /// the provider identities linked to Herald users, short-lived sign-in state and hand-off codes (only hashes of
    /// their secrets), the issuers whose session tokens the API accepts, and the organization a session is limited to
    /// when it was opened through single sign-on.
    static let v3 = Migration(
        version: 3,
        name: "single sign-on: OpenID Connect connections, identities, sign-in state",
        statements: [
            .createTable(
                UsersTables.ssoConnections,
                columns: [
                    Column("organization_id", .uuid), Column("issuer", .text), Column("client_id", .text),
                    Column("client_secret_encrypted", .bytes, nullable: true), Column("default_role", .text), Column("enabled", .boolean),
                    Column("accept_session_tokens", .boolean), Column("session_token_audience", .text, nullable: true),
                    Column("authorized_parties", .text), Column("created_at", .timestamp), Column("updated_at", .timestamp),
                ],
                primaryKey: ["organization_id"], tenantIsolated: true
            ),
            .createTable(
                UsersTables.ssoIdentities,
                columns: [
                    Column("organization_id", .uuid), Column("issuer", .text), Column("subject", .text), Column("user_id", .uuid),
                    Column("created_at", .timestamp), Column("last_sign_in_at", .timestamp),
                ],
                primaryKey: ["organization_id", "issuer", "subject"], tenantIsolated: true
            ),
            .createIndex("sso_identities_user", on: UsersTables.ssoIdentities, columns: ["user_id"]),
            .createTable(
                UsersTables.ssoTransients,
                columns: [
                    Column("token_hash", .bytes), Column("kind", .text), Column("organization_id", .uuid), Column("payload", .text),
                    Column("expires_at", .timestamp),
                ],
                primaryKey: ["token_hash"], tenantIsolated: false
            ),
            .createIndex("sso_transients_expiry", on: UsersTables.ssoTransients, columns: ["expires_at"]),
            .createTable(
                UsersTables.ssoIssuers,
                columns: [Column("issuer", .text), Column("organization_id", .uuid)],
                primaryKey: ["issuer"], tenantIsolated: false
            ),
            .createIndex("sso_issuers_organization", on: UsersTables.ssoIssuers, columns: ["organization_id"], unique: true),
            .raw(
                sqlite: ["ALTER TABLE users_sessions ADD COLUMN organization_id TEXT"],
                postgres: ["ALTER TABLE users.sessions ADD COLUMN organization_id UUID"]
            ),
        ]
    )
}

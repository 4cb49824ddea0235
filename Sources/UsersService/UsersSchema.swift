import HeraldStorage

/// The Users service's tables. In PostgreSQL they live in the `users` schema; nothing else reads them.
enum UsersTables {
    static let accounts = Table("users", "accounts")
    static let sessions = Table("users", "sessions")
    static let refreshTokens = Table("users", "refresh_tokens")
    static let organizations = Table("users", "organizations")
    static let memberships = Table("users", "memberships")
    static let invitations = Table("users", "invitations")
    static let invitationTokens = Table("users", "invitation_tokens")
    static let sites = Table("users", "sites")
    static let siteDirectory = Table("users", "site_directory")
    static let auditLogs = Table("users", "audit_logs")
    static let auditChains = Table("users", "audit_chains")
}

extension UsersService {
    /// Versioned migrations, one list per dialect. Never edit a migration that has landed; append a new one.
    ///
    /// Tenant-scoped tables (organizations, memberships, invitations, sites, audit logs) carry row-level security
    /// policies in PostgreSQL, forced on the table owner, keyed on `herald.org_id` / `herald.user_id` which
    /// Herald sets per transaction. Without them a query sees no rows. Routing tables (`site_directory`,
    /// `invitation_tokens`) hold only identifiers and hashes, so keys can be resolved before the tenant is known.
    public static let migrations = MigrationSet(
        owner: "users",
        migrations: [
            UsersMigrations.v1,
            UsersMigrations.v2,
        ]
    )
}

/// The service's migrations, one file each under `Migrations/`.
enum UsersMigrations {}

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
    static let ssoConnections = Table("users", "sso_connections")
    static let ssoIdentities = Table("users", "sso_identities")
    static let ssoTransients = Table("users", "sso_transients")
    static let ssoIssuers = Table("users", "sso_issuers")
    static let browserSessions = Table("users", "browser_sessions")
    static let scimTokens = Table("users", "scim_tokens")
    static let scimTokenDirectory = Table("users", "scim_token_directory")
    static let scimUsers = Table("users", "scim_users")
    static let scimGroups = Table("users", "scim_groups")
    static let scimGroupMembers = Table("users", "scim_group_members")
}

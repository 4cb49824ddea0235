import HeraldStorage

extension UsersMigrations {
    /// SCIM 2.0 provisioning (docs/SSO-SCIM.md). Version 3 belongs to single sign-on.
    ///
    /// - `scim_tokens`: an organization's provisioning tokens (name, a prefix to recognise them, who made them, when
    ///   last used); the secret itself only as a SHA-256 hash in `scim_token_directory`, a tenant-free routing table
    ///   like `site_directory` that resolves a bearer token to its organization before the tenant is known.
    /// - `scim_users`: the organization's provisioned users. The SCIM id is the Herald account's id; the attributes
    ///   the identity provider sent (userName, name, emails, externalId, …) are one encrypted JSON document, found by
    ///   keyed hashes of the userName, the externalId and the account's email.
    /// - `scim_groups` and `scim_group_members`: groups pushed by the identity provider; a group named after a role
    ///   grants it to its members.
    static let v4 = Migration(
        version: 4,
        name: "SCIM provisioning: tokens, users, groups",
        statements: [
            .createTable(
                UsersTables.scimTokens,
                columns: [
                    Column("id", .uuid), Column("organization_id", .uuid), Column("name", .text), Column("token_prefix", .text),
                    Column("created_by", .uuid), Column("created_at", .timestamp), Column("last_used_at", .timestamp, nullable: true),
                ],
                primaryKey: ["id"], tenantIsolated: true
            ),
            .createIndex("scim_tokens_org", on: UsersTables.scimTokens, columns: ["organization_id", "created_at"]),
            .createTable(
                UsersTables.scimTokenDirectory,
                columns: [Column("token_hash", .bytes), Column("token_id", .uuid), Column("organization_id", .uuid)],
                primaryKey: ["token_hash"], unique: [["token_id"]], tenantIsolated: false
            ),
            .createTable(
                UsersTables.scimUsers,
                columns: [
                    Column("organization_id", .uuid), Column("user_id", .uuid), Column("user_name_index", .bytes),
                    Column("external_id_index", .bytes, nullable: true), Column("email_index", .bytes),
                    Column("attributes_encrypted", .bytes), Column("active", .boolean), Column("version", .integer),
                    Column("created_at", .timestamp), Column("updated_at", .timestamp),
                ],
                primaryKey: ["organization_id", "user_id"], unique: [["organization_id", "user_name_index"]], tenantIsolated: true
            ),
            .createIndex("scim_users_created", on: UsersTables.scimUsers, columns: ["organization_id", "created_at"]),
            .createIndex("scim_users_external", on: UsersTables.scimUsers, columns: ["organization_id", "external_id_index"]),
            .createIndex("scim_users_email", on: UsersTables.scimUsers, columns: ["organization_id", "email_index"]),
            .createTable(
                UsersTables.scimGroups,
                columns: [
                    Column("id", .uuid), Column("organization_id", .uuid), Column("display_name", .text), Column("display_name_key", .text),
                    Column("external_id", .text, nullable: true), Column("role", .text, nullable: true), Column("version", .integer),
                    Column("created_at", .timestamp), Column("updated_at", .timestamp),
                ],
                primaryKey: ["id"], unique: [["organization_id", "display_name_key"]], tenantIsolated: true
            ),
            .createIndex("scim_groups_created", on: UsersTables.scimGroups, columns: ["organization_id", "created_at"]),
            .createTable(
                UsersTables.scimGroupMembers,
                columns: [Column("group_id", .uuid), Column("user_id", .uuid), Column("organization_id", .uuid)],
                primaryKey: ["group_id", "user_id"], tenantIsolated: true
            ),
            .createIndex("scim_group_members_user", on: UsersTables.scimGroupMembers, columns: ["organization_id", "user_id"]),
        ]
    )
}

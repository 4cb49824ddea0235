import HeraldStorage

extension UsersMigrations {
    /// Landed: never edit (its checksum is recorded by every deployment); add a new migration instead.
    static let v1 = Migration(
        version: 1,
        name: "accounts, sessions, organizations, memberships, invitations, sites, audit log",
        sqlite: [
            """
            CREATE TABLE users_accounts (
                id TEXT PRIMARY KEY,
                email_index BLOB NOT NULL UNIQUE,
                email_encrypted BLOB NOT NULL,
                name_encrypted BLOB NOT NULL,
                password_hash TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE users_sessions (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES users_accounts (id) ON DELETE CASCADE,
                created_at INTEGER NOT NULL,
                last_used_at INTEGER NOT NULL,
                idle_expires_at INTEGER NOT NULL,
                absolute_expires_at INTEGER NOT NULL,
                revoked_at INTEGER,
                revoked_reason TEXT,
                ip TEXT NOT NULL,
                user_agent TEXT NOT NULL
            )
            """,
            "CREATE INDEX users_sessions_user ON users_sessions (user_id)",
            """
            CREATE TABLE users_refresh_tokens (
                token_hash BLOB PRIMARY KEY,
                session_id TEXT NOT NULL REFERENCES users_sessions (id) ON DELETE CASCADE,
                issued_at INTEGER NOT NULL,
                used_at INTEGER
            )
            """,
            "CREATE INDEX users_refresh_tokens_session ON users_refresh_tokens (session_id)",
            """
            CREATE TABLE users_organizations (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                created_by TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE users_memberships (
                organization_id TEXT NOT NULL REFERENCES users_organizations (id) ON DELETE CASCADE,
                user_id TEXT NOT NULL REFERENCES users_accounts (id) ON DELETE CASCADE,
                role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
                created_at INTEGER NOT NULL,
                PRIMARY KEY (organization_id, user_id)
            )
            """,
            "CREATE INDEX users_memberships_user ON users_memberships (user_id)",
            """
            CREATE TABLE users_invitations (
                id TEXT PRIMARY KEY,
                organization_id TEXT NOT NULL REFERENCES users_organizations (id) ON DELETE CASCADE,
                email_index BLOB NOT NULL,
                email_encrypted BLOB NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
                invited_by TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                accepted_at INTEGER,
                accepted_by TEXT,
                revoked_at INTEGER
            )
            """,
            "CREATE INDEX users_invitations_org ON users_invitations (organization_id, created_at)",
            """
            CREATE TABLE users_invitation_tokens (
                token_hash BLOB PRIMARY KEY,
                invitation_id TEXT NOT NULL UNIQUE,
                organization_id TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE users_sites (
                id TEXT PRIMARY KEY,
                organization_id TEXT NOT NULL REFERENCES users_organizations (id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                domain TEXT NOT NULL,
                timezone TEXT NOT NULL,
                public_key TEXT NOT NULL UNIQUE,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                keys_rotated_at INTEGER NOT NULL
            )
            """,
            "CREATE INDEX users_sites_org ON users_sites (organization_id, created_at)",
            """
            CREATE TABLE users_site_directory (
                site_id TEXT PRIMARY KEY,
                organization_id TEXT NOT NULL,
                secret_hash BLOB NOT NULL UNIQUE
            )
            """,
            """
            CREATE TABLE users_audit_logs (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                chain TEXT NOT NULL,
                chain_seq INTEGER NOT NULL,
                organization_id TEXT,
                subject_user_id TEXT,
                actor_user_id TEXT,
                action TEXT NOT NULL,
                target_type TEXT,
                target_id TEXT,
                ip TEXT,
                user_agent TEXT,
                request_id TEXT,
                details TEXT NOT NULL,
                occurred_at_us INTEGER NOT NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL,
                UNIQUE (chain, chain_seq)
            )
            """,
            "CREATE INDEX users_audit_logs_org ON users_audit_logs (organization_id, seq)",
            "CREATE INDEX users_audit_logs_subject ON users_audit_logs (subject_user_id, seq)",
            """
            CREATE TRIGGER users_audit_logs_no_update BEFORE UPDATE ON users_audit_logs
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
            """,
            """
            CREATE TRIGGER users_audit_logs_no_delete BEFORE DELETE ON users_audit_logs
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
            """,
            """
            CREATE TABLE users_audit_chains (
                chain TEXT PRIMARY KEY,
                last_seq INTEGER NOT NULL,
                last_hash TEXT NOT NULL
            )
            """,
        ],
        postgres: [
            "CREATE SCHEMA IF NOT EXISTS users",
            """
            CREATE TABLE users.accounts (
                id UUID PRIMARY KEY,
                email_index BYTEA NOT NULL UNIQUE,
                email_encrypted BYTEA NOT NULL,
                name_encrypted BYTEA NOT NULL,
                password_hash TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL
            )
            """,
            """
            CREATE TABLE users.sessions (
                id UUID PRIMARY KEY,
                user_id UUID NOT NULL REFERENCES users.accounts (id) ON DELETE CASCADE,
                created_at TIMESTAMPTZ NOT NULL,
                last_used_at TIMESTAMPTZ NOT NULL,
                idle_expires_at TIMESTAMPTZ NOT NULL,
                absolute_expires_at TIMESTAMPTZ NOT NULL,
                revoked_at TIMESTAMPTZ,
                revoked_reason TEXT,
                ip TEXT NOT NULL,
                user_agent TEXT NOT NULL
            )
            """,
            "CREATE INDEX sessions_user ON users.sessions (user_id)",
            """
            CREATE TABLE users.refresh_tokens (
                token_hash BYTEA PRIMARY KEY,
                session_id UUID NOT NULL REFERENCES users.sessions (id) ON DELETE CASCADE,
                issued_at TIMESTAMPTZ NOT NULL,
                used_at TIMESTAMPTZ
            )
            """,
            "CREATE INDEX refresh_tokens_session ON users.refresh_tokens (session_id)",
            """
            CREATE TABLE users.organizations (
                id UUID PRIMARY KEY,
                name TEXT NOT NULL,
                created_by UUID NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL
            )
            """,
            """
            CREATE TABLE users.memberships (
                organization_id UUID NOT NULL REFERENCES users.organizations (id) ON DELETE CASCADE,
                user_id UUID NOT NULL REFERENCES users.accounts (id) ON DELETE CASCADE,
                role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
                created_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (organization_id, user_id)
            )
            """,
            "CREATE INDEX memberships_user ON users.memberships (user_id)",
            """
            CREATE TABLE users.invitations (
                id UUID PRIMARY KEY,
                organization_id UUID NOT NULL REFERENCES users.organizations (id) ON DELETE CASCADE,
                email_index BYTEA NOT NULL,
                email_encrypted BYTEA NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
                invited_by UUID NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                expires_at TIMESTAMPTZ NOT NULL,
                accepted_at TIMESTAMPTZ,
                accepted_by UUID,
                revoked_at TIMESTAMPTZ
            )
            """,
            "CREATE INDEX invitations_org ON users.invitations (organization_id, created_at)",
            """
            CREATE TABLE users.invitation_tokens (
                token_hash BYTEA PRIMARY KEY,
                invitation_id UUID NOT NULL UNIQUE,
                organization_id UUID NOT NULL
            )
            """,
            """
            CREATE TABLE users.sites (
                id UUID PRIMARY KEY,
                organization_id UUID NOT NULL REFERENCES users.organizations (id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                domain TEXT NOT NULL,
                timezone TEXT NOT NULL,
                public_key TEXT NOT NULL UNIQUE,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                keys_rotated_at TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE INDEX sites_org ON users.sites (organization_id, created_at)",
            """
            CREATE TABLE users.site_directory (
                site_id UUID PRIMARY KEY,
                organization_id UUID NOT NULL,
                secret_hash BYTEA NOT NULL UNIQUE
            )
            """,
            """
            CREATE TABLE users.audit_logs (
                seq BIGSERIAL PRIMARY KEY,
                id UUID NOT NULL UNIQUE,
                chain TEXT NOT NULL,
                chain_seq BIGINT NOT NULL,
                organization_id UUID,
                subject_user_id UUID,
                actor_user_id UUID,
                action TEXT NOT NULL,
                target_type TEXT,
                target_id TEXT,
                ip TEXT,
                user_agent TEXT,
                request_id TEXT,
                details JSONB NOT NULL,
                occurred_at_us BIGINT NOT NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL,
                UNIQUE (chain, chain_seq)
            )
            """,
            "CREATE INDEX audit_logs_org ON users.audit_logs (organization_id, seq)",
            "CREATE INDEX audit_logs_subject ON users.audit_logs (subject_user_id, seq)",
            """
            CREATE FUNCTION users.audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$
            """,
            """
            CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON users.audit_logs
            FOR EACH ROW EXECUTE FUNCTION users.audit_logs_append_only()
            """,
            """
            CREATE TABLE users.audit_chains (
                chain TEXT PRIMARY KEY,
                last_seq BIGINT NOT NULL,
                last_hash TEXT NOT NULL
            )
            """,
            // Row-level security: forced, so it binds Herald's own (owner) role too.
            "ALTER TABLE users.organizations ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE users.organizations FORCE ROW LEVEL SECURITY",
            """
            CREATE POLICY tenant_isolation ON users.organizations
            USING (
                id = NULLIF(current_setting('herald.org_id', true), '')::uuid
                OR id IN (SELECT organization_id FROM users.memberships
                          WHERE user_id = NULLIF(current_setting('herald.user_id', true), '')::uuid)
            )
            WITH CHECK (id = NULLIF(current_setting('herald.org_id', true), '')::uuid)
            """,
            "ALTER TABLE users.memberships ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE users.memberships FORCE ROW LEVEL SECURITY",
            """
            CREATE POLICY tenant_isolation ON users.memberships
            USING (
                organization_id = NULLIF(current_setting('herald.org_id', true), '')::uuid
                OR user_id = NULLIF(current_setting('herald.user_id', true), '')::uuid
            )
            WITH CHECK (organization_id = NULLIF(current_setting('herald.org_id', true), '')::uuid)
            """,
            "ALTER TABLE users.invitations ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE users.invitations FORCE ROW LEVEL SECURITY",
            """
            CREATE POLICY tenant_isolation ON users.invitations
            USING (organization_id = NULLIF(current_setting('herald.org_id', true), '')::uuid)
            """,
            "ALTER TABLE users.sites ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE users.sites FORCE ROW LEVEL SECURITY",
            """
            CREATE POLICY tenant_isolation ON users.sites
            USING (organization_id = NULLIF(current_setting('herald.org_id', true), '')::uuid)
            """,
            "ALTER TABLE users.audit_logs ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE users.audit_logs FORCE ROW LEVEL SECURITY",
            """
            CREATE POLICY tenant_isolation ON users.audit_logs
            USING (
                organization_id = NULLIF(current_setting('herald.org_id', true), '')::uuid
                OR (organization_id IS NULL AND subject_user_id IN (
                    SELECT user_id FROM users.memberships
                    WHERE organization_id = NULLIF(current_setting('herald.org_id', true), '')::uuid))
                OR (organization_id IS NULL AND subject_user_id = NULLIF(current_setting('herald.user_id', true), '')::uuid)
            )
            WITH CHECK (
                organization_id IS NULL OR organization_id = NULLIF(current_setting('herald.org_id', true), '')::uuid
            )
            """,
        ]
    )
}

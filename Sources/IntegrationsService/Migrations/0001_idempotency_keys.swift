import HeraldStorage

extension IntegrationsMigrations {
    /// Landed: never edit (its checksum is recorded by every deployment); add a new migration instead.
    static let v1 = Migration(
        version: 1,
        name: "idempotency keys",
        sqlite: [
            """
            CREATE TABLE integrations_idempotency_keys (
                site_id TEXT NOT NULL,
                key TEXT NOT NULL,
                organization_id TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                status INTEGER NOT NULL,
                response TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (site_id, key)
            )
            """
        ],
        postgres: [
            "CREATE SCHEMA IF NOT EXISTS integrations",
            """
            CREATE TABLE integrations.idempotency_keys (
                site_id UUID NOT NULL,
                key TEXT NOT NULL,
                organization_id UUID NOT NULL,
                request_hash TEXT NOT NULL,
                status INTEGER NOT NULL,
                response TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (site_id, key)
            )
            """,
            "ALTER TABLE integrations.idempotency_keys ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE integrations.idempotency_keys FORCE ROW LEVEL SECURITY",
            """
            CREATE POLICY tenant_isolation ON integrations.idempotency_keys
            USING (organization_id = NULLIF(current_setting('herald.org_id', true), '')::uuid)
            """,
        ]
    )
}

import HeraldStorage

extension IntegrationsMigrations {
    /// Landed: never edit (its checksum is recorded by every deployment); add a new migration instead.
    static let v2 = Migration(
        version: 2,
        name: "integrations, inbound deliveries, imports, outbound webhooks",
        sqlite: [
            """
            CREATE TABLE integrations_integrations (
                id TEXT PRIMARY KEY, site_id TEXT NOT NULL, organization_id TEXT NOT NULL, type TEXT NOT NULL, name TEXT NOT NULL,
                status TEXT NOT NULL, config TEXT NOT NULL, secrets BLOB NOT NULL,
                breaker_state TEXT NOT NULL DEFAULT 'closed', consecutive_failures INTEGER NOT NULL DEFAULT 0,
                breaker_opened_at INTEGER, last_error TEXT, last_success_at INTEGER, last_failure_at INTEGER,
                created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
            )
            """,
            "CREATE INDEX integrations_integrations_site ON integrations_integrations (site_id, created_at)",
            "CREATE TABLE integrations_hook_routes (token_hash BLOB PRIMARY KEY, integration_id TEXT NOT NULL UNIQUE, site_id TEXT NOT NULL, organization_id TEXT NOT NULL)",
            "CREATE TABLE integrations_shop_routes (shop_domain TEXT NOT NULL, integration_id TEXT NOT NULL, site_id TEXT NOT NULL, organization_id TEXT NOT NULL, PRIMARY KEY (shop_domain, integration_id))",
            "CREATE TABLE integrations_oauth_states (state_hash BLOB PRIMARY KEY, integration_id TEXT NOT NULL, site_id TEXT NOT NULL, organization_id TEXT NOT NULL, expires_at INTEGER NOT NULL)",
            """
            CREATE TABLE integrations_inbound_deliveries (
                id TEXT PRIMARY KEY, integration_id TEXT NOT NULL, site_id TEXT NOT NULL, organization_id TEXT NOT NULL,
                received_at INTEGER NOT NULL, source_delivery_id TEXT, topic TEXT, status TEXT NOT NULL, reason TEXT,
                activity_id TEXT, signature_verified INTEGER NOT NULL, processed_at INTEGER
            )
            """,
            "CREATE UNIQUE INDEX integrations_inbound_dedupe ON integrations_inbound_deliveries (integration_id, source_delivery_id) WHERE source_delivery_id IS NOT NULL AND status NOT IN ('rejected', 'duplicate')",
            "CREATE INDEX integrations_inbound_list ON integrations_inbound_deliveries (integration_id, received_at DESC)",
            "CREATE TABLE integrations_source_records (integration_id TEXT NOT NULL, source_key TEXT NOT NULL, organization_id TEXT NOT NULL, activity_id TEXT NOT NULL, PRIMARY KEY (integration_id, source_key))",
            """
            CREATE TABLE integrations_imports (
                id TEXT PRIMARY KEY, integration_id TEXT NOT NULL, site_id TEXT NOT NULL, organization_id TEXT NOT NULL,
                status TEXT NOT NULL, requested INTEGER NOT NULL, imported INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0,
                error TEXT, started_at INTEGER NOT NULL, finished_at INTEGER
            )
            """,
            """
            CREATE TABLE integrations_webhook_endpoints (
                id TEXT PRIMARY KEY, site_id TEXT NOT NULL, organization_id TEXT NOT NULL, kind TEXT NOT NULL, url TEXT NOT NULL,
                description TEXT, event_types TEXT NOT NULL, status TEXT NOT NULL, disabled_reason TEXT, secrets BLOB NOT NULL,
                consecutive_failures INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
            )
            """,
            "CREATE INDEX integrations_endpoints_site ON integrations_webhook_endpoints (site_id, created_at)",
            """
            CREATE TABLE integrations_webhook_messages (
                id TEXT PRIMARY KEY, endpoint_id TEXT NOT NULL REFERENCES integrations_webhook_endpoints (id) ON DELETE CASCADE,
                site_id TEXT NOT NULL, organization_id TEXT NOT NULL, event_type TEXT NOT NULL, event_id TEXT NOT NULL,
                payload TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER,
                last_status INTEGER, last_error TEXT, created_at INTEGER NOT NULL, delivered_at INTEGER, UNIQUE (endpoint_id, event_id)
            )
            """,
            "CREATE INDEX integrations_messages_endpoint ON integrations_webhook_messages (endpoint_id, created_at DESC)",
            """
            CREATE TABLE integrations_webhook_attempts (
                id TEXT PRIMARY KEY, message_id TEXT NOT NULL REFERENCES integrations_webhook_messages (id) ON DELETE CASCADE,
                organization_id TEXT NOT NULL, attempted_at INTEGER NOT NULL, status_code INTEGER, error TEXT, duration_ms INTEGER NOT NULL
            )
            """,
            "CREATE INDEX integrations_attempts_message ON integrations_webhook_attempts (message_id, attempted_at)",
            "CREATE TABLE integrations_webhook_queue (message_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, next_attempt_at INTEGER NOT NULL, lease_until INTEGER)",
            "CREATE INDEX integrations_queue_due ON integrations_webhook_queue (next_attempt_at)",
        ],
        postgres: [
            """
            CREATE TABLE integrations.integrations (
                id UUID PRIMARY KEY, site_id UUID NOT NULL, organization_id UUID NOT NULL, type TEXT NOT NULL, name TEXT NOT NULL,
                status TEXT NOT NULL, config JSONB NOT NULL, secrets BYTEA NOT NULL,
                breaker_state TEXT NOT NULL DEFAULT 'closed', consecutive_failures INTEGER NOT NULL DEFAULT 0,
                breaker_opened_at TIMESTAMPTZ, last_error TEXT, last_success_at TIMESTAMPTZ, last_failure_at TIMESTAMPTZ,
                created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE INDEX integrations_site ON integrations.integrations (site_id, created_at)",
            "CREATE TABLE integrations.hook_routes (token_hash BYTEA PRIMARY KEY, integration_id UUID NOT NULL UNIQUE, site_id UUID NOT NULL, organization_id UUID NOT NULL)",
            "CREATE TABLE integrations.shop_routes (shop_domain TEXT NOT NULL, integration_id UUID NOT NULL, site_id UUID NOT NULL, organization_id UUID NOT NULL, PRIMARY KEY (shop_domain, integration_id))",
            "CREATE TABLE integrations.oauth_states (state_hash BYTEA PRIMARY KEY, integration_id UUID NOT NULL, site_id UUID NOT NULL, organization_id UUID NOT NULL, expires_at TIMESTAMPTZ NOT NULL)",
            """
            CREATE TABLE integrations.inbound_deliveries (
                id UUID PRIMARY KEY, integration_id UUID NOT NULL, site_id UUID NOT NULL, organization_id UUID NOT NULL,
                received_at TIMESTAMPTZ NOT NULL, source_delivery_id TEXT, topic TEXT, status TEXT NOT NULL, reason TEXT,
                activity_id UUID, signature_verified BOOLEAN NOT NULL, processed_at TIMESTAMPTZ
            )
            """,
            "CREATE UNIQUE INDEX inbound_dedupe ON integrations.inbound_deliveries (integration_id, source_delivery_id) WHERE source_delivery_id IS NOT NULL AND status NOT IN ('rejected', 'duplicate')",
            "CREATE INDEX inbound_list ON integrations.inbound_deliveries (integration_id, received_at DESC)",
            "CREATE TABLE integrations.source_records (integration_id UUID NOT NULL, source_key TEXT NOT NULL, organization_id UUID NOT NULL, activity_id UUID NOT NULL, PRIMARY KEY (integration_id, source_key))",
            """
            CREATE TABLE integrations.imports (
                id UUID PRIMARY KEY, integration_id UUID NOT NULL, site_id UUID NOT NULL, organization_id UUID NOT NULL,
                status TEXT NOT NULL, requested INTEGER NOT NULL, imported INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0,
                error TEXT, started_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ
            )
            """,
            """
            CREATE TABLE integrations.webhook_endpoints (
                id UUID PRIMARY KEY, site_id UUID NOT NULL, organization_id UUID NOT NULL, kind TEXT NOT NULL, url TEXT NOT NULL,
                description TEXT, event_types JSONB NOT NULL, status TEXT NOT NULL, disabled_reason TEXT, secrets BYTEA NOT NULL,
                consecutive_failures INTEGER NOT NULL DEFAULT 0, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE INDEX endpoints_site ON integrations.webhook_endpoints (site_id, created_at)",
            """
            CREATE TABLE integrations.webhook_messages (
                id TEXT PRIMARY KEY, endpoint_id UUID NOT NULL REFERENCES integrations.webhook_endpoints (id) ON DELETE CASCADE,
                site_id UUID NOT NULL, organization_id UUID NOT NULL, event_type TEXT NOT NULL, event_id UUID NOT NULL,
                payload TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TIMESTAMPTZ,
                last_status INTEGER, last_error TEXT, created_at TIMESTAMPTZ NOT NULL, delivered_at TIMESTAMPTZ, UNIQUE (endpoint_id, event_id)
            )
            """,
            "CREATE INDEX messages_endpoint ON integrations.webhook_messages (endpoint_id, created_at DESC)",
            """
            CREATE TABLE integrations.webhook_attempts (
                id UUID PRIMARY KEY, message_id TEXT NOT NULL REFERENCES integrations.webhook_messages (id) ON DELETE CASCADE,
                organization_id UUID NOT NULL, attempted_at TIMESTAMPTZ NOT NULL, status_code INTEGER, error TEXT, duration_ms INTEGER NOT NULL
            )
            """,
            "CREATE INDEX attempts_message ON integrations.webhook_attempts (message_id, attempted_at)",
            "CREATE TABLE integrations.webhook_queue (message_id TEXT PRIMARY KEY, organization_id UUID NOT NULL, next_attempt_at TIMESTAMPTZ NOT NULL, lease_until TIMESTAMPTZ)",
            "CREATE INDEX queue_due ON integrations.webhook_queue (next_attempt_at)",
        ]
            + [
                "integrations", "inbound_deliveries", "source_records", "imports", "webhook_endpoints", "webhook_messages",
                "webhook_attempts",
            ]
            .flatMap { TenantIsolation.landedPolicy(schema: "integrations", table: $0) }
    )
}

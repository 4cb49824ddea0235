import HeraldStorage

extension BusMigrations {
    /// Landed: never edit (its checksum is recorded by every deployment); add a new migration instead.
    static let v1 = Migration(
        version: 1,
        name: "event log and consumer state",
        sqlite: [
            """
            CREATE TABLE bus_events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                tx_id INTEGER NOT NULL DEFAULT 0,
                id TEXT NOT NULL UNIQUE,
                type TEXT NOT NULL,
                version INTEGER NOT NULL,
                occurred_at INTEGER NOT NULL,
                organization_id TEXT,
                site_id TEXT,
                data TEXT NOT NULL
            )
            """,
            "CREATE INDEX bus_events_type ON bus_events (type, seq)",
            """
            CREATE TABLE bus_subscriptions (
                group_name TEXT PRIMARY KEY,
                position_tx INTEGER NOT NULL DEFAULT 0,
                position_seq INTEGER NOT NULL DEFAULT 0,
                lease_owner TEXT,
                lease_until INTEGER
            )
            """,
            """
            CREATE TABLE bus_retries (
                group_name TEXT NOT NULL,
                event_seq INTEGER NOT NULL REFERENCES bus_events (seq) ON DELETE CASCADE,
                attempts INTEGER NOT NULL,
                next_attempt_at INTEGER NOT NULL,
                last_error TEXT NOT NULL,
                dead INTEGER NOT NULL DEFAULT 0,
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (group_name, event_seq)
            )
            """,
            "CREATE INDEX bus_retries_due ON bus_retries (group_name, dead, next_attempt_at)",
            """
            CREATE TABLE bus_processed (
                group_name TEXT NOT NULL,
                event_id TEXT NOT NULL,
                processed_at INTEGER NOT NULL,
                PRIMARY KEY (group_name, event_id)
            )
            """,
        ],
        postgres: [
            "CREATE SCHEMA IF NOT EXISTS bus",
            """
            CREATE TABLE bus.events (
                seq BIGSERIAL PRIMARY KEY,
                tx_id BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
                id UUID NOT NULL UNIQUE,
                type TEXT NOT NULL,
                version INTEGER NOT NULL,
                occurred_at TIMESTAMPTZ NOT NULL,
                organization_id UUID,
                site_id UUID,
                data JSONB NOT NULL
            )
            """,
            "CREATE INDEX events_tx_seq ON bus.events (tx_id, seq)",
            "CREATE INDEX events_type ON bus.events (type, seq)",
            """
            CREATE TABLE bus.subscriptions (
                group_name TEXT PRIMARY KEY,
                position_tx BIGINT NOT NULL DEFAULT 0,
                position_seq BIGINT NOT NULL DEFAULT 0,
                lease_owner TEXT,
                lease_until TIMESTAMPTZ
            )
            """,
            """
            CREATE TABLE bus.retries (
                group_name TEXT NOT NULL,
                event_seq BIGINT NOT NULL REFERENCES bus.events (seq) ON DELETE CASCADE,
                attempts INTEGER NOT NULL,
                next_attempt_at TIMESTAMPTZ NOT NULL,
                last_error TEXT NOT NULL,
                dead BOOLEAN NOT NULL DEFAULT false,
                updated_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (group_name, event_seq)
            )
            """,
            "CREATE INDEX retries_due ON bus.retries (group_name, dead, next_attempt_at)",
            """
            CREATE TABLE bus.processed (
                group_name TEXT NOT NULL,
                event_id UUID NOT NULL,
                processed_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (group_name, event_id)
            )
            """,
        ]
    )
}

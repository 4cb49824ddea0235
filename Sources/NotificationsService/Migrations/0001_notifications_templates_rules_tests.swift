import HeraldStorage

extension NotificationsMigrations {
    /// Landed: never edit (its checksum is recorded by every deployment); add a new migration instead.
    static let v1 = Migration(
        version: 1,
        name: "sites, activities, templates, notifications, targeting rules, A/B tests",
        sqlite: [
            """
            CREATE TABLE notifications_sites (
                site_id TEXT PRIMARY KEY,
                organization_id TEXT NOT NULL,
                name TEXT NOT NULL,
                domain TEXT NOT NULL,
                timezone TEXT NOT NULL,
                public_key TEXT NOT NULL,
                privacy TEXT NOT NULL DEFAULT '{}',
                updated_at INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE notifications_site_keys (
                public_key TEXT PRIMARY KEY,
                site_id TEXT NOT NULL UNIQUE,
                organization_id TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE notifications_activities (
                id TEXT PRIMARY KEY,
                site_id TEXT NOT NULL,
                organization_id TEXT NOT NULL,
                type TEXT NOT NULL,
                first_name TEXT,
                city TEXT,
                region TEXT,
                country TEXT,
                product_name TEXT,
                product_url TEXT,
                image_url TEXT,
                rating INTEGER,
                last_name_encrypted TEXT,
                email_encrypted TEXT,
                occurred_at INTEGER NOT NULL,
                provenance TEXT NOT NULL,
                recorded_at INTEGER NOT NULL
            )
            """,
            "CREATE INDEX notifications_activities_site ON notifications_activities (site_id, occurred_at DESC)",
            """
            CREATE TABLE notifications_templates (
                id TEXT PRIMARY KEY,
                site_id TEXT NOT NULL,
                organization_id TEXT NOT NULL,
                name TEXT NOT NULL,
                type TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            )
            """,
            "CREATE INDEX notifications_templates_site ON notifications_templates (site_id, created_at)",
            """
            CREATE TABLE notifications_notifications (
                id TEXT PRIMARY KEY,
                site_id TEXT NOT NULL,
                organization_id TEXT NOT NULL,
                name TEXT NOT NULL,
                type TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('draft', 'published', 'paused')),
                template_id TEXT REFERENCES notifications_templates (id) ON DELETE SET NULL,
                message TEXT,
                settings TEXT NOT NULL,
                content TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                published_at INTEGER
            )
            """,
            "CREATE INDEX notifications_notifications_site ON notifications_notifications (site_id, created_at)",
            """
            CREATE TABLE notifications_targeting_rules (
                notification_id TEXT PRIMARY KEY REFERENCES notifications_notifications (id) ON DELETE CASCADE,
                organization_id TEXT NOT NULL,
                rules TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE notifications_ab_tests (
                id TEXT PRIMARY KEY,
                notification_id TEXT NOT NULL UNIQUE REFERENCES notifications_notifications (id) ON DELETE CASCADE,
                organization_id TEXT NOT NULL,
                created_at INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE notifications_ab_test_variants (
                id TEXT PRIMARY KEY,
                ab_test_id TEXT NOT NULL REFERENCES notifications_ab_tests (id) ON DELETE CASCADE,
                organization_id TEXT NOT NULL,
                position INTEGER NOT NULL,
                name TEXT NOT NULL,
                weight INTEGER NOT NULL,
                message TEXT
            )
            """,
        ],
        postgres: [
            "CREATE SCHEMA IF NOT EXISTS notifications",
            """
            CREATE TABLE notifications.sites (
                site_id UUID PRIMARY KEY,
                organization_id UUID NOT NULL,
                name TEXT NOT NULL,
                domain TEXT NOT NULL,
                timezone TEXT NOT NULL,
                public_key TEXT NOT NULL,
                privacy JSONB NOT NULL DEFAULT '{}',
                updated_at TIMESTAMPTZ NOT NULL
            )
            """,
            """
            CREATE TABLE notifications.site_keys (
                public_key TEXT PRIMARY KEY,
                site_id UUID NOT NULL UNIQUE,
                organization_id UUID NOT NULL
            )
            """,
            """
            CREATE TABLE notifications.activities (
                id UUID PRIMARY KEY,
                site_id UUID NOT NULL,
                organization_id UUID NOT NULL,
                type TEXT NOT NULL,
                first_name TEXT,
                city TEXT,
                region TEXT,
                country TEXT,
                product_name TEXT,
                product_url TEXT,
                image_url TEXT,
                rating INTEGER,
                last_name_encrypted TEXT,
                email_encrypted TEXT,
                occurred_at TIMESTAMPTZ NOT NULL,
                provenance JSONB NOT NULL,
                recorded_at TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE INDEX activities_site ON notifications.activities (site_id, occurred_at DESC)",
            """
            CREATE TABLE notifications.templates (
                id UUID PRIMARY KEY,
                site_id UUID NOT NULL,
                organization_id UUID NOT NULL,
                name TEXT NOT NULL,
                type TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE INDEX templates_site ON notifications.templates (site_id, created_at)",
            """
            CREATE TABLE notifications.notifications (
                id UUID PRIMARY KEY,
                site_id UUID NOT NULL,
                organization_id UUID NOT NULL,
                name TEXT NOT NULL,
                type TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('draft', 'published', 'paused')),
                template_id UUID REFERENCES notifications.templates (id) ON DELETE SET NULL,
                message TEXT,
                settings JSONB NOT NULL,
                content JSONB NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                published_at TIMESTAMPTZ
            )
            """,
            "CREATE INDEX notifications_site ON notifications.notifications (site_id, created_at)",
            """
            CREATE TABLE notifications.targeting_rules (
                notification_id UUID PRIMARY KEY REFERENCES notifications.notifications (id) ON DELETE CASCADE,
                organization_id UUID NOT NULL,
                rules JSONB NOT NULL
            )
            """,
            """
            CREATE TABLE notifications.ab_tests (
                id UUID PRIMARY KEY,
                notification_id UUID NOT NULL UNIQUE REFERENCES notifications.notifications (id) ON DELETE CASCADE,
                organization_id UUID NOT NULL,
                created_at TIMESTAMPTZ NOT NULL
            )
            """,
            """
            CREATE TABLE notifications.ab_test_variants (
                id UUID PRIMARY KEY,
                ab_test_id UUID NOT NULL REFERENCES notifications.ab_tests (id) ON DELETE CASCADE,
                organization_id UUID NOT NULL,
                position INTEGER NOT NULL,
                name TEXT NOT NULL,
                weight INTEGER NOT NULL,
                message TEXT
            )
            """,
        ]
            + ["sites", "activities", "templates", "notifications", "targeting_rules", "ab_tests", "ab_test_variants"]
            .flatMap { TenantIsolation.landedPolicy(schema: "notifications", table: $0) }
    )
}

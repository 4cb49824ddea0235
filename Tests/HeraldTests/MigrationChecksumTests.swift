import HeraldApp
import HeraldStorage
import Testing

/// A migration that has landed must render to exactly the same statements forever: deployments recorded its
/// checksum and refuse to start when it changes. Refactoring how migrations are written must keep these.
@Suite("Landed migrations")
struct MigrationChecksumTests {
    /// owner/version → (SQLite checksum, PostgreSQL checksum), as recorded when each migration landed.
    static let landed: [String: (String, String)] = [
        "bus/1": (
            "7c35548cae5328eddda1d492508d25e6516af6e3c8f351ce3d5f87396cda8086", "61da08b190f20f956250ae537af8c8da0200b1407e7511fe28b05364ac00e6a8"
        ),
        "bus/2": (
            "7c56977aadb42efcf36af10a68a7047273436c4b1f95a72cd3d32255a5015823", "ac3c95712b627e1e7347ba8c496ed1718f5cc4848196f6db00a0b6e7abd71fdb"
        ),
        "users/1": (
            "caa2254416d7a2b68d2e7ac4031d5de3d52dadef2825da17f8f5cbe9322f3699", "19a4877569a0066727e6a5a49368572ed91a4493693e383e0754d0a4d13d0dff"
        ),
        "notifications/1": (
            "eee080e016c165a316e29ebde0ac3c5e8cfbba0dc0d85a43a081b9ac2aea68e4", "9181d64f1eab8d8d33833348feb13dcedad98f99071304f9f349ec5c47e9f92d"
        ),
        "integrations/1": (
            "b82cc0a8d87ed7cce0b54d63f0730e418dfc7ffd5a77280328512c7db4ce6cf9", "c2216f7830317b89b6d8a0f3a715c0e78e92e062d90951a9f7a15e43d98c267f"
        ),
        "integrations/2": (
            "efb91655acb1b24449d05a0e7b1f70fc639aeff0a74e528ada2492774abf88cf", "02b396da50d306a605a353b506855b9743b7f5bdfbe89101cd4fa618207ce3a4"
        ),
        "analytics/1": (
            "d08c9186cbe7164ee418584b256b428188638e57afbf9ba047efbf0ed8f95de6", "9c4fb15ccba7a56f298745a4e05dc8323958201f753f3cb9e7427c1a6415d1fd"
        ),
    ]

    @Test func landedMigrationsRenderByteForByte() {
        var seen = Set<String>()
        for set in HeraldRuntime.migrationSets {
            for migration in set.migrations {
                let key = "\(set.owner)/\(migration.version)"
                guard let expected = Self.landed[key] else { continue }
                seen.insert(key)
                #expect(migration.checksum(for: .sqlite) == expected.0, "\(key) changed for SQLite")
                #expect(migration.checksum(for: .postgres) == expected.1, "\(key) changed for PostgreSQL")
            }
        }
        #expect(seen == Set(Self.landed.keys), "a landed migration is missing")
    }

    @Test func versionsAreUniqueAndAscendingPerOwner() {
        var owners = Set<String>()
        for set in HeraldRuntime.migrationSets {
            #expect(owners.insert(set.owner).inserted, "two migration sets are owned by \(set.owner)")
            let versions = set.migrations.map(\.version)
            // Versions need not be contiguous (work in parallel branches reserves numbers), but are unique, ascending,
            // and start at 1.
            #expect(versions.first == 1, "\(set.owner): the first version must be 1")
            #expect(zip(versions, versions.dropFirst()).allSatisfy { $0 < $1 }, "\(set.owner): versions must ascend: \(versions)")
        }
    }
}

@Suite("Schema vocabulary")
struct SchemaVocabularyTests {
    @Test func aTenantTableRendersForBothStores() {
        let table = Table("demo", "things")
        let migration = Migration(
            version: 1, name: "demo",
            statements: [
                .createTable(
                    table,
                    columns: [
                        Column("id", .uuid), Column("organization_id", .uuid), Column("count", .integer, default: .integer(0)),
                        Column("seen", .boolean, default: .boolean(false)), Column("at", .timestamp, nullable: true),
                    ],
                    primaryKey: ["id"], tenantIsolated: true
                ),
                .createIndex("things_at", on: table, columns: ["organization_id", "at"]),
            ]
        )
        #expect(
            migration.sqlite == [
                "CREATE TABLE demo_things (\n    id TEXT NOT NULL,\n    organization_id TEXT NOT NULL,\n    count INTEGER NOT NULL DEFAULT 0,\n"
                    + "    seen INTEGER NOT NULL DEFAULT 0,\n    at INTEGER,\n    PRIMARY KEY (id)\n)",
                "CREATE INDEX demo_things_at ON demo_things (organization_id, at)",
            ]
        )
        #expect(
            migration.postgres == [
                "CREATE SCHEMA IF NOT EXISTS demo",
                "CREATE TABLE demo.things (\n    id UUID NOT NULL,\n    organization_id UUID NOT NULL,\n    count BIGINT NOT NULL DEFAULT 0,\n"
                    + "    seen BOOLEAN NOT NULL DEFAULT false,\n    at TIMESTAMPTZ,\n    PRIMARY KEY (id)\n)",
                "ALTER TABLE demo.things ENABLE ROW LEVEL SECURITY",
                "ALTER TABLE demo.things FORCE ROW LEVEL SECURITY",
                "CREATE POLICY tenant_isolation ON demo.things USING (organization_id = tenancy.current_organization())",
                "CREATE INDEX things_at ON demo.things (organization_id, at)",
            ]
        )
    }
}

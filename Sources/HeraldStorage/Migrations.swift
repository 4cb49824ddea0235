import Crypto
import Foundation
import HeraldCore
import Logging

/// One schema change, written once per dialect. Never edit a migration after it has landed: add a new one.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sqlite: [String]
    public let postgres: [String]

    public init(version: Int, name: String, sqlite: [String], postgres: [String]) {
        self.version = version
        self.name = name
        self.sqlite = sqlite
        self.postgres = postgres
    }

    func statements(for dialect: SQLDialect) -> [String] {
        dialect == .postgres ? postgres : sqlite
    }

    public func checksum(for dialect: SQLDialect) -> String {
        let digest = SHA256.hash(data: Data(statements(for: dialect).joined(separator: "\n;\n").utf8))
        return digest.hexString
    }
}

/// The ordered migrations of one owner (a service, or a shared library such as the event bus).
public struct MigrationSet: Sendable {
    public let owner: String
    public let migrations: [Migration]

    public init(owner: String, migrations: [Migration]) {
        self.owner = owner
        self.migrations = migrations
    }
}

/// Applies migrations in order, one transaction each, and records them in `herald_migrations`.
public struct Migrator: Sendable {
    public let database: any Database
    public let logger: Logger

    public init(database: any Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    static let table = "herald_migrations"

    /// Applies every pending migration of `sets`. Refuses to start if an applied migration was edited.
    @discardableResult
    public func migrate(_ sets: [MigrationSet]) async throws -> Int {
        try await ensureTable()
        var applied = 0
        for set in sets {
            for migration in set.migrations.sorted(by: { $0.version < $1.version }) {
                let didApply = try await database.transaction(.system) { tx -> Bool in
                    if tx.dialect == .postgres {
                        // Serialises concurrent instances starting at once; released at commit.
                        try await tx.execute("SELECT pg_advisory_xact_lock(7206331)")
                    }
                    let existing = try await tx.queryFirst(
                        "SELECT checksum FROM \(unsafeRaw: Self.table) WHERE owner = \(set.owner) AND version = \(migration.version)"
                    )
                    let checksum = migration.checksum(for: tx.dialect)
                    if let existing {
                        let recorded: String = try existing.get("checksum")
                        guard recorded == checksum else {
                            throw StorageError.migrationChanged(service: set.owner, version: migration.version)
                        }
                        return false
                    }
                    for statement in migration.statements(for: tx.dialect) {
                        try await tx.execute(SQL(stringLiteral: statement))
                    }
                    try await tx.execute(
                        """
                        INSERT INTO \(unsafeRaw: Self.table) (owner, version, name, checksum, applied_at)
                        VALUES (\(set.owner), \(migration.version), \(migration.name), \(checksum), \(Date()))
                        """
                    )
                    return true
                }
                if didApply {
                    applied += 1
                    logger.info(
                        "applied migration", metadata: ["owner": "\(set.owner)", "version": "\(migration.version)", "name": "\(migration.name)"])
                }
            }
        }
        return applied
    }

    /// The migrations of `sets` that are not yet applied (readiness reports not-ready while any remain).
    public func pending(_ sets: [MigrationSet]) async throws -> [String] {
        let rows: [SQLRow]
        do {
            rows = try await database.query("SELECT owner, version FROM \(unsafeRaw: Self.table)")
        } catch {
            return sets.flatMap { set in set.migrations.map { "\(set.owner)/\($0.version)" } }
        }
        var done = Set<String>()
        for row in rows {
            let owner: String = try row.get("owner")
            let version: Int = try row.get("version")
            done.insert("\(owner)/\(version)")
        }
        return sets.flatMap { set in set.migrations.map { "\(set.owner)/\($0.version)" } }.filter { !done.contains($0) }
    }

    private func ensureTable() async throws {
        let timestamp = database.dialect == .postgres ? "TIMESTAMPTZ" : "INTEGER"
        try await database.transaction(.system) { tx in
            if tx.dialect == .postgres {
                try await tx.execute("SELECT pg_advisory_xact_lock(7206331)")
            }
            try await tx.execute(
                """
                CREATE TABLE IF NOT EXISTS \(unsafeRaw: Self.table) (
                    owner TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    name TEXT NOT NULL,
                    checksum TEXT NOT NULL,
                    applied_at \(unsafeRaw: timestamp) NOT NULL,
                    PRIMARY KEY (owner, version)
                )
                """
            )
        }
    }
}

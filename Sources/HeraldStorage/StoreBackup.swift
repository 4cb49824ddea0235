import Foundation
import Logging
import PostgresNIO
import SQLiteNIO

/// What `herald backup` and `herald restore` need from a store: a consistent copy and, from the same snapshot,
/// every table's row count, which the restore checks the restored store against.
public enum StoreBackup {
    /// Every table of the store (schema-qualified on PostgreSQL) with its row count, read in the caller's transaction.
    /// On PostgreSQL the tenant tables are only fully visible to a role that bypasses row-level security.
    public static func rowCounts(in tx: any SQLExecutor) async throws -> [String: Int] {
        let names: [String]
        switch tx.dialect {
        case .sqlite:
            names = try await tx.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                .map { try $0.get("name") }
        case .postgres:
            names = try await tx.query(
                """
                SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
                WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
                """
            ).map { try $0.get("name") }
        }
        var counts: [String: Int] = [:]
        for name in names {
            // Names come from the catalog, quoted as identifiers.
            counts[name] = try await tx.queryFirst("SELECT COUNT(*) AS n FROM \(unsafeRaw: quoted(name))")?.get("n") ?? 0
        }
        return counts
    }

    /// Whether the connected role sees every tenant's rows: always on SQLite; on PostgreSQL only a superuser or a role
    /// with BYPASSRLS (Herald's own role is bound by row-level security, so a backup made with it would miss rows).
    public static func seesEveryRow(in tx: any SQLExecutor) async throws -> Bool {
        guard tx.dialect == .postgres else { return true }
        return try await tx.queryFirst("SELECT (rolsuper OR rolbypassrls) AS sees FROM pg_roles WHERE rolname = current_user")?.get("sees") ?? false
    }

    /// Why a backup or restore refuses Herald's own role.
    public static func rowSecurityError(_ url: PostgresURL) -> StorageError {
        StorageError.unavailable(
            "the role \(url.username) is bound by row-level security and would see no tenant's rows: back up and restore as the "
                + "database's superuser or a role with BYPASSRLS"
        )
    }

    static func quoted(_ name: String) -> String {
        name.split(separator: ".", omittingEmptySubsequences: false).map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
            .joined(separator: ".")
    }

    /// Opens a read-only REPEATABLE READ transaction on PostgreSQL, counts every table in it and exports its snapshot,
    /// then runs `body` with the snapshot's id while the transaction stays open, so `pg_dump --snapshot` dumps exactly
    /// what was counted even while Herald keeps writing.
    public static func withPostgresSnapshot<T: Sendable>(
        _ url: PostgresURL, logger: Logger, _ body: @Sendable (_ snapshot: String, _ counts: [String: Int]) async throws -> T
    ) async throws -> T {
        let configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password, database: url.database, tls: try url.connectionTLS()
        )
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
        } catch let error as PSQLError {
            throw StorageError.unavailable("cannot connect to PostgreSQL at \(url.redacted): \(PostgresExecutor.explain(error))")
        }
        do {
            try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            let executor = PostgresExecutor(connection: connection, logger: logger)
            guard try await seesEveryRow(in: executor) else { throw rowSecurityError(url) }
            var snapshot = ""
            for try await id in try await connection.query("SELECT pg_export_snapshot()", logger: logger).decode(String.self) { snapshot = id }
            let counts = try await rowCounts(in: executor)
            let result = try await body(snapshot, counts)
            try await connection.query("COMMIT", logger: logger)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            if let error = error as? PSQLError { throw StorageError.unavailable(PostgresExecutor.explain(error)) }
            throw error
        }
    }
}

extension SQLiteDatabase {
    /// Writes a consistent, compacted copy of the database to `path` (`VACUUM INTO`), while others keep writing.
    public func copy(to path: String) async throws {
        try await transactionless { connection in
            _ = try await connection.query("VACUUM INTO ?", [.text(path)])
        }
    }
}

import Foundation

/// How many bytes each organization's rows take in a service's largest tables: what Billing meters as storage.
///
/// PostgreSQL measures each row as stored (`pg_column_size` of the whole row, after TOAST compression). SQLite has no
/// per-row size, so there a table names its variable-length columns and a fixed size for the rest of the row, and
/// the byte lengths of those columns are summed: close to the file's pages, and the same for the same data every time.
///
/// Tenant tables are only readable in their organization's scope (row-level security), so measuring goes in two
/// steps: a directory table that any scope may read lists each organization's keys (its own id, its sites, its
/// integrations), then each organization's rows are summed in its own scope through an index on that key.
public struct StorageFootprint: Sendable {
    /// One tenant table to measure.
    public struct Source: Sendable {
        public var table: Table
        /// The indexed column the rows are found by (`organization_id`, `site_id`, `integration_id`).
        public var key: String
        /// A table readable in the system scope with `organization_id` and the `key` column.
        public var directory: Table
        /// Text, JSON and blob columns, whose byte lengths SQLite adds up.
        public var variableColumns: [String]
        /// The bytes of the fixed-size columns and SQLite's row header.
        public var fixedBytesPerRow: Int

        public init(_ table: Table, key: String, directory: Table, variableColumns: [String], fixedBytesPerRow: Int) {
            self.table = table
            self.key = key
            self.directory = directory
            self.variableColumns = variableColumns
            self.fixedBytesPerRow = fixedBytesPerRow
        }
    }

    public var sources: [Source]

    public init(_ sources: [Source]) {
        self.sources = sources
    }

    /// The bytes per organization across the sources, for every organization a directory lists (0 when it has no rows).
    public func bytesByOrganization(in database: any Database) async throws -> [UUID: Int64] {
        var totals: [UUID: Int64] = [:]
        for source in sources {
            // Column names come from code, never from input.
            let keys = try await database.query(
                "SELECT DISTINCT organization_id AS organization_id, \(unsafeRaw: source.key) AS k FROM \(source.directory)",
                scope: .system
            )
            var keysByOrganization: [UUID: [SQLValue]] = [:]
            for row in keys {
                guard let organizationId = try row.get("organization_id", as: UUID?.self), let key = row.columns["k"] else { continue }
                keysByOrganization[organizationId, default: []].append(key)
            }
            let size: SQL =
                switch database.dialect {
                case .postgres: "pg_column_size(t.*)"
                case .sqlite:
                    SQL(
                        stringLiteral: ([String(source.fixedBytesPerRow)]
                            + source.variableColumns.map { "COALESCE(LENGTH(CAST(t.\($0) AS BLOB)), 0)" })
                            .joined(separator: " + "))
                }
            for (organizationId, values) in keysByOrganization {
                var bytes: Int64 = 0
                // A few hundred keys per statement keeps the parameter list within both stores' limits.
                for start in stride(from: 0, to: values.count, by: 500) {
                    let chunk = values[start..<min(start + 500, values.count)].map { SQL(value: $0) }
                    let row = try await database.transaction(.organization(organizationId)) { tx in
                        try await tx.queryFirst(
                            """
                            SELECT COALESCE(SUM(\(size)), 0) AS bytes FROM \(source.table) t
                            WHERE t.\(unsafeRaw: source.key) IN (\(SQL.joined(chunk, separator: ", ")))
                            """
                        )
                    }
                    bytes += try row?.get("bytes", as: Int64.self) ?? 0
                }
                totals[organizationId, default: 0] += bytes
            }
        }
        return totals
    }
}

extension SQL {
    /// A statement that is one bound value.
    init(value: SQLValue) {
        self.fragments = [.bind(value)]
    }
}

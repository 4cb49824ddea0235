import Foundation

/// A column type, written once and rendered for each dialect.
public enum ColumnType: Sendable, Equatable {
    /// `UUID` in PostgreSQL, lower-case text in SQLite.
    case uuid
    case text
    /// A 64-bit integer: `BIGINT` in PostgreSQL, `INTEGER` in SQLite (which is 64-bit).
    case integer
    case double
    case boolean
    /// A point in time: `TIMESTAMPTZ` in PostgreSQL, Unix microseconds in SQLite (see `SQLValue.date`).
    case timestamp
    case bytes
    /// `JSONB` in PostgreSQL, text in SQLite.
    case json
    /// A primary key that the store numbers: `BIGSERIAL` / `INTEGER … AUTOINCREMENT`. Only as the sole key column.
    case serial

    func rendered(for dialect: SQLDialect) -> String {
        switch (self, dialect) {
        case (.uuid, .postgres): "UUID"
        case (.uuid, .sqlite), (.text, _), (.json, .sqlite): "TEXT"
        case (.integer, .postgres): "BIGINT"
        case (.integer, .sqlite), (.boolean, .sqlite), (.timestamp, .sqlite): "INTEGER"
        case (.double, .postgres): "DOUBLE PRECISION"
        case (.double, .sqlite): "REAL"
        case (.boolean, .postgres): "BOOLEAN"
        case (.timestamp, .postgres): "TIMESTAMPTZ"
        case (.bytes, .postgres): "BYTEA"
        case (.bytes, .sqlite): "BLOB"
        case (.json, .postgres): "JSONB"
        case (.serial, .postgres): "BIGSERIAL"
        case (.serial, .sqlite): "INTEGER"
        }
    }
}

/// One column of a table definition.
public struct Column: Sendable {
    public var name: String
    public var type: ColumnType
    public var nullable: Bool
    /// A constant default: a number, `true`/`false`, or text (quoted when rendered).
    public var defaultValue: DefaultValue?
    /// `other_table (column)`, deleting this row with the referenced one.
    public var references: (table: Table, column: String)?

    public enum DefaultValue: Sendable {
        case integer(Int64)
        case double(Double)
        case boolean(Bool)
        case text(String)

        func rendered(for dialect: SQLDialect) -> String {
            switch self {
            case .integer(let value): String(value)
            case .double(let value): String(value)
            case .boolean(let value): dialect == .postgres ? (value ? "true" : "false") : (value ? "1" : "0")
            case .text(let value): "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
            }
        }
    }

    public init(
        _ name: String, _ type: ColumnType, nullable: Bool = false, default defaultValue: DefaultValue? = nil,
        references: (table: Table, column: String)? = nil
    ) {
        self.name = name
        self.type = type
        self.nullable = nullable
        self.defaultValue = defaultValue
        self.references = references
    }

    func rendered(for dialect: SQLDialect, soleSerialKey: Bool) -> String {
        var text = "\(name) \(type.rendered(for: dialect))"
        if soleSerialKey {
            text += dialect == .postgres ? " PRIMARY KEY" : " PRIMARY KEY AUTOINCREMENT"
            return text
        }
        if !nullable { text += " NOT NULL" }
        if let defaultValue { text += " DEFAULT \(defaultValue.rendered(for: dialect))" }
        if let references {
            text += " REFERENCES \(references.table.rendered(for: dialect)) (\(references.column)) ON DELETE CASCADE"
        }
        return text
    }
}

/// A schema change written once for both stores. Rendered into each dialect's statements by ``Migration``.
///
/// The vocabulary is small on purpose; anything it cannot say is written per dialect with ``raw(sqlite:postgres:)``.
public enum SchemaStatement: Sendable {
    /// `CREATE TABLE` with a primary key. `tenantIsolated` tables must have an `organization_id` column; in
    /// PostgreSQL they get the forced row-level security policy every tenant table has.
    case createTable(Table, columns: [Column], primaryKey: [String], unique: [[String]] = [], tenantIsolated: Bool)
    case createIndex(String, on: Table, columns: [String], unique: Bool = false)
    /// The row-level security policy of a tenant table that already exists (PostgreSQL; nothing in SQLite).
    case tenantIsolation(Table)
    /// Statements that only one dialect needs, or that differ beyond the vocabulary.
    case raw(sqlite: [String], postgres: [String])

    /// The statements this change becomes in `dialect`. `knownSchemas` collects PostgreSQL schemas already
    /// created earlier in the same migration, so each is created once.
    func statements(for dialect: SQLDialect, knownSchemas: inout Set<String>) -> [String] {
        switch self {
        case .createTable(let table, let columns, let primaryKey, let unique, let tenantIsolated):
            precondition(!tenantIsolated || columns.contains { $0.name == "organization_id" }, "\(table.name): tenant tables need organization_id")
            var statements: [String] = []
            if dialect == .postgres, knownSchemas.insert(table.schema).inserted {
                statements.append("CREATE SCHEMA IF NOT EXISTS \(table.schema)")
            }
            let soleSerial = primaryKey.count == 1 && columns.first { $0.name == primaryKey[0] }?.type == .serial
            var lines = columns.map { "    " + $0.rendered(for: dialect, soleSerialKey: soleSerial && $0.name == primaryKey[0]) }
            if !soleSerial { lines.append("    PRIMARY KEY (\(primaryKey.joined(separator: ", ")))") }
            for columns in unique { lines.append("    UNIQUE (\(columns.joined(separator: ", ")))") }
            statements.append("CREATE TABLE \(table.rendered(for: dialect)) (\n" + lines.joined(separator: ",\n") + "\n)")
            if tenantIsolated { statements += TenantIsolation.statements(for: table, dialect: dialect) }
            return statements
        case .createIndex(let name, let table, let columns, let unique):
            // SQLite index names share one namespace per database; prefix them like the table.
            let indexName = dialect == .postgres ? name : "\(table.schema)_\(name)"
            return ["CREATE \(unique ? "UNIQUE " : "")INDEX \(indexName) ON \(table.rendered(for: dialect)) (\(columns.joined(separator: ", ")))"]
        case .tenantIsolation(let table):
            return TenantIsolation.statements(for: table, dialect: dialect)
        case .raw(let sqlite, let postgres):
            return dialect == .postgres ? postgres : sqlite
        }
    }
}

/// Row-level security for tenant tables, in one place. Every policy compares `organization_id` with
/// `tenancy.current_organization()`, the one SQL function that reads the transaction's tenant setting.
public enum TenantIsolation {
    /// The SQL expression for the organization of the running transaction (PostgreSQL).
    public static let currentOrganization = "tenancy.current_organization()"
    /// The SQL expression for the signed-in user of the running transaction, for rows a user sees across
    /// organizations (their memberships).
    public static let currentUser = "tenancy.current_user_id()"

    static func statements(for table: Table, dialect: SQLDialect) -> [String] {
        guard dialect == .postgres else { return [] }
        let name = table.rendered(for: .postgres)
        return [
            "ALTER TABLE \(name) ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE \(name) FORCE ROW LEVEL SECURITY",
            "CREATE POLICY tenant_isolation ON \(name) USING (organization_id = \(currentOrganization))",
        ]
    }

    /// The policy statements as the first migrations wrote them, kept byte for byte so their checksums hold.
    public static func landedPolicy(schema: String, table: String) -> [String] {
        [
            "ALTER TABLE \(schema).\(table) ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE \(schema).\(table) FORCE ROW LEVEL SECURITY",
            """
            CREATE POLICY tenant_isolation ON \(schema).\(table)
            USING (organization_id = NULLIF(current_setting('herald.org_id', true), '')::uuid)
            """,
        ]
    }

    /// Moves a landed table's policy onto `tenancy.current_organization()`.
    public static func adoptFunction(_ table: Table) -> SchemaStatement {
        .raw(
            sqlite: [],
            postgres: ["ALTER POLICY tenant_isolation ON \(table.rendered(for: .postgres)) USING (organization_id = \(currentOrganization))"]
        )
    }

    /// The storage layer's own migrations: the tenant function every policy uses. Applied before any service's.
    public static let migrations = MigrationSet(
        owner: "storage",
        migrations: [
            Migration(
                version: 1,
                name: "tenancy.current_organization() and tenancy.current_user_id()",
                statements: [
                    .raw(
                        sqlite: [],
                        postgres: [
                            "CREATE SCHEMA IF NOT EXISTS tenancy",
                            """
                            CREATE OR REPLACE FUNCTION tenancy.current_organization() RETURNS uuid
                            LANGUAGE sql STABLE AS $$ SELECT NULLIF(current_setting('herald.org_id', true), '')::uuid $$
                            """,
                            """
                            CREATE OR REPLACE FUNCTION tenancy.current_user_id() RETURNS uuid
                            LANGUAGE sql STABLE AS $$ SELECT NULLIF(current_setting('herald.user_id', true), '')::uuid $$
                            """,
                        ]
                    )
                ]
            )
        ]
    )
}

extension Migration {
    /// A migration written once in the schema vocabulary and rendered for both dialects.
    public init(version: Int, name: String, statements: [SchemaStatement]) {
        var sqliteSchemas = Set<String>()
        var postgresSchemas = Set<String>()
        self.init(
            version: version,
            name: name,
            sqlite: statements.flatMap { $0.statements(for: .sqlite, knownSchemas: &sqliteSchemas) },
            postgres: statements.flatMap { $0.statements(for: .postgres, knownSchemas: &postgresSchemas) }
        )
    }
}

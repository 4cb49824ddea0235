import Foundation
import HeraldCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import ServiceLifecycle

/// Where and how to reach PostgreSQL, parsed from a `postgres://user:pass@host:port/db?sslmode=…` URL.
public struct PostgresURL: Sendable, Equatable {
    public enum TLSMode: String, Sendable { case disable, prefer, require, verifyFull = "verify-full" }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    /// Parses a database URL, explaining in one sentence what is wrong with a bad one.
    public init(parsing text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme else {
            throw StorageError.unavailable("the database URL is not a URL; expected postgres://user:password@host:5432/database")
        }
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw StorageError.unavailable("the database URL scheme must be postgres:// (got \(scheme)://)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw StorageError.unavailable("the database URL has no host; expected postgres://user:password@host:5432/database")
        }
        guard let user = components.user, !user.isEmpty else {
            throw StorageError.unavailable("the database URL has no user name; expected postgres://user:password@host:5432/database")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !database.isEmpty else {
            throw StorageError.unavailable("the database URL names no database; expected postgres://user:password@host:5432/database")
        }
        var tls = TLSMode.prefer
        if let mode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value {
            switch mode {
            case "disable": tls = .disable
            case "allow", "prefer": tls = .prefer
            case "require", "verify-ca": tls = .require
            case "verify-full": tls = .verifyFull
            default: throw StorageError.unavailable("unknown sslmode \(mode); use disable, prefer, require or verify-full")
            }
        }
        self.host = host
        self.port = components.port ?? 5432
        self.username = user.removingPercentEncoding ?? user
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        self.database = database.removingPercentEncoding ?? database
        self.tls = tls
    }

    func clientConfiguration(maximumConnections: Int) -> PostgresClient.Configuration {
        let tlsConfiguration: PostgresClient.Configuration.TLS
        switch tls {
        case .disable:
            tlsConfiguration = .disable
        case .prefer:
            var config = TLSConfiguration.makeClientConfiguration()
            config.certificateVerification = .none
            tlsConfiguration = .prefer(config)
        case .require:
            var config = TLSConfiguration.makeClientConfiguration()
            config.certificateVerification = .none
            tlsConfiguration = .require(config)
        case .verifyFull:
            tlsConfiguration = .require(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: host,
            port: port,
            username: username,
            password: password,
            database: database,
            tls: tlsConfiguration
        )
        configuration.options.maximumConnections = maximumConnections
        configuration.options.minimumConnections = min(configuration.options.minimumConnections, maximumConnections)
        return configuration
    }

    /// The URL without its password, for logs and messages.
    public var redacted: String { "postgres://\(username)@\(host):\(port)/\(database)" }
}

/// The production store: a pooled `PostgresClient`, run as a service, with tenant settings applied per transaction.
public final class PostgresDatabase: Database, Service {
    public let dialect = SQLDialect.postgres
    public let client: PostgresClient
    public let url: PostgresURL
    private let logger: Logger
    private let pool: PoolCounter

    /// The pool's size when the operator says nothing (HERALD_DATABASE_POOL_SIZE).
    public static let defaultMaximumConnections = 20

    /// - Parameter maximumConnections: the pool's upper bound; every process of every service opens its own pool,
    ///   so their sum must stay under the server's `max_connections`.
    public init(url: PostgresURL, maximumConnections: Int = PostgresDatabase.defaultMaximumConnections, logger: Logger) {
        self.url = url
        self.logger = logger
        self.pool = PoolCounter(capacity: maximumConnections)
        self.client = PostgresClient(configuration: url.clientConfiguration(maximumConnections: maximumConnections), backgroundLogger: logger)
    }

    /// Opens one connection to check that the server is reachable and accepts the credentials,
    /// so a bad URL fails at start-up with a clear message instead of at the first request.
    public static func probe(_ url: PostgresURL, logger: Logger) async throws {
        let configuration = PostgresConnection.Configuration(
            host: url.host,
            port: url.port,
            username: url.username,
            password: url.password,
            database: url.database,
            tls: try url.connectionTLS()
        )
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            try await connection.close()
        } catch let error as PSQLError {
            throw StorageError.unavailable("cannot connect to PostgreSQL at \(url.redacted): \(PostgresExecutor.explain(error))")
        } catch {
            throw StorageError.unavailable("cannot connect to PostgreSQL at \(url.redacted): \(error)")
        }
    }

    public func run() async {
        await client.run()
    }

    public func transaction<T: Sendable>(_ scope: TenantScope, _ body: (any SQLExecutor) async throws -> T) async throws -> T {
        do {
            pool.requested()
            defer { pool.released() }
            return try await client.withTransaction(logger: logger) { connection in
                pool.leased()
                defer { pool.returned() }
                let executor = PostgresExecutor(connection: connection, logger: logger)
                try await executor.applyScope(scope)
                return try await body(executor)
            }
        } catch let error as PostgresTransactionError {
            throw PostgresExecutor.map(error.closureError ?? error.beginError ?? error.commitError ?? error)
        } catch {
            throw PostgresExecutor.map(error)
        }
    }

    /// A transaction like any other, declared read-only so that a write in it fails as it does on SQLite.
    public func read<T: Sendable>(_ scope: TenantScope, _ body: (any SQLExecutor) async throws -> T) async throws -> T {
        try await transaction(scope) { tx in
            try await tx.execute("SET TRANSACTION READ ONLY")
            return try await body(tx)
        }
    }

    public var poolUse: PoolUse { pool.use }

    public func ping() async throws {
        do {
            try await client.query("SELECT 1", logger: logger)
        } catch {
            throw PostgresExecutor.map(error)
        }
    }

    public func shutdown() async {}
}

extension PostgresURL {
    /// The same TLS policy as the pool's, for a single connection.
    func connectionTLS() throws -> PostgresConnection.Configuration.TLS {
        var config = TLSConfiguration.makeClientConfiguration()
        if tls != .verifyFull { config.certificateVerification = .none }
        switch tls {
        case .disable: return .disable
        case .prefer: return .prefer(try NIOSSLContext(configuration: config))
        case .require, .verifyFull: return .require(try NIOSSLContext(configuration: config))
        }
    }
}

struct PostgresExecutor: SQLExecutor {
    let connection: PostgresConnection
    let logger: Logger
    var dialect: SQLDialect { .postgres }

    func setTenant(_ scope: TenantScope) async throws {
        try await applyScope(scope)
    }

    /// Sets the per-transaction settings that the row-level security policies read.
    func applyScope(_ scope: TenantScope) async throws {
        let org = scope.organizationId?.lowercased ?? ""
        let user = scope.userId?.lowercased ?? ""
        try await connection.query(
            "SELECT set_config('herald.org_id', \(org), true), set_config('herald.user_id', \(user), true)",
            logger: logger
        )
    }

    func query(_ sql: SQL) async throws -> [SQLRow] {
        let (text, values) = sql.render(for: .postgres)
        try SQLValue.checkStorable(values)
        var bindings = PostgresBindings(capacity: values.count)
        for value in values { Self.bind(value, into: &bindings) }
        do {
            let sequence = try await connection.query(PostgresQuery(unsafeSQL: text, binds: bindings), logger: logger)
            var rows: [SQLRow] = []
            for try await row in sequence {
                var columns: [String: SQLValue] = [:]
                for cell in row {
                    columns[cell.columnName] = try Self.decode(cell)
                }
                rows.append(SQLRow(columns: columns))
            }
            return rows
        } catch {
            throw Self.map(error)
        }
    }

    static func bind(_ value: SQLValue, into bindings: inout PostgresBindings) {
        switch value {
        case .null: bindings.appendNull()
        case .int(let value): bindings.append(value)
        case .double(let value): bindings.append(value)
        case .text(let value): bindings.append(value)
        case .bytes(let bytes): bindings.append(ByteBuffer(bytes: bytes))
        case .bool(let value): bindings.append(value)
        case .uuid(let uuid): bindings.append(uuid)
        case .date(let date):
            // timestamptz's binary format: microseconds since 2000-01-01, rounded to the nearest. PostgresNIO's own
            // Date encoding truncates, so a time read back and bound again (a page cursor) could lose a microsecond
            // and skip every row that shares it.
            var buffer = ByteBuffer()
            buffer.writeInteger(date.unixMicroseconds - SQL.postgresEpochMicroseconds)
            bindings.append(PostgresData(type: .timestamptz, formatCode: .binary, value: buffer))
        case .json(let text):
            // jsonb's binary format is a version byte followed by the document's text.
            var buffer = ByteBuffer()
            buffer.writeInteger(UInt8(1))
            buffer.writeString(text)
            bindings.append(PostgresData(type: .jsonb, formatCode: .binary, value: buffer))
        case .binaryArray(let elementType, let bytes):
            bindings.append(PostgresData(type: PostgresDataType(elementType.arrayOid), formatCode: .binary, value: bytes))
        }
    }

    static func decode(_ cell: PostgresCell) throws -> SQLValue {
        guard var bytes = cell.bytes else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8, .oid:
            return .int(try cell.decode(Int64.self))
        case .bool:
            return .bool(try cell.decode(Bool.self))
        case .float4, .float8:
            return .double(try cell.decode(Double.self))
        case .numeric:
            let decimal = try cell.decode(Decimal.self)
            let double = NSDecimalNumber(decimal: decimal).doubleValue
            return double.rounded() == double && abs(double) < 9e15 ? .int(Int64(double)) : .double(double)
        case .uuid:
            return .uuid(try cell.decode(UUID.self))
        case .timestamptz, .timestamp:
            return .date(try cell.decode(Date.self))
        case .bytea:
            return .bytes(bytes.readBytes(length: bytes.readableBytes) ?? [])
        case .jsonb:
            if cell.format == .binary { bytes.moveReaderIndex(forwardBy: 1) }
            return .json(bytes.readString(length: bytes.readableBytes) ?? "")
        case .json:
            return .json(bytes.readString(length: bytes.readableBytes) ?? "")
        default:
            return .text(try cell.decode(String.self))
        }
    }

    static func map(_ error: any Error) -> any Error {
        if let error = error as? StorageError { return error }
        guard let error = error as? PSQLError else { return error }
        if error.code == .server, let state = error.serverInfo?[.sqlState] {
            let constraint = error.serverInfo?[.constraintName] ?? error.serverInfo?[.message] ?? state
            switch state {
            case "23505": return StorageError.uniqueViolation(constraint)
            case "23503": return StorageError.foreignKeyViolation(constraint)
            default: return StorageError.other("PostgreSQL \(state): \(error.serverInfo?[.message] ?? "")")
            }
        }
        return StorageError.unavailable("PostgreSQL: \(explain(error))")
    }

    static func explain(_ error: PSQLError) -> String {
        if let message = error.serverInfo?[.message] { return message }
        if let underlying = error.underlying { return "\(underlying)" }
        return "\(error.code)"
    }
}

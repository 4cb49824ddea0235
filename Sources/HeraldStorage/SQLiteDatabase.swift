import Foundation
import HeraldCore
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO
import Synchronization

/// The embedded store: one SQLite file in WAL mode, one connection, transactions taken in turn.
public final class SQLiteDatabase: Database {
    public let dialect = SQLDialect.sqlite
    private let connection: SQLiteConnection
    private let lock = AsyncLock()
    private let pool = PoolCounter(capacity: 1)
    private let closed = Atomic(false)
    public let path: String

    private init(connection: SQLiteConnection, path: String) {
        self.connection = connection
        self.path = path
    }

    /// Opens (creating if needed) the database file at `path` with owner-only permissions.
    public static func open(path: String, logger: Logger) async throws -> SQLiteDatabase {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw StorageError.unavailable("cannot create the database file \(path)")
            }
        }
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw StorageError.unavailable("cannot open the database file \(path): \(error)")
        }
        let database = SQLiteDatabase(connection: connection, path: path)
        // WAL lets readers proceed during a write; FULL makes every commit durable across power loss.
        for pragma in [
            "PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 5000",
        ] {
            _ = try await connection.query(pragma, [])
        }
        return database
    }

    public static func inMemory(logger: Logger) async throws -> SQLiteDatabase {
        let connection = try await SQLiteConnection.open(storage: .memory, logger: logger)
        _ = try await connection.query("PRAGMA foreign_keys = ON", [])
        return SQLiteDatabase(connection: connection, path: ":memory:")
    }

    public var poolUse: PoolUse { pool.use }

    public func transaction<T: Sendable>(_ scope: TenantScope, _ body: (any SQLExecutor) async throws -> T) async throws -> T {
        pool.requested()
        defer { pool.released() }
        return try await lock.withLock {
            pool.leased()
            defer { pool.returned() }
            return try await run(body)
        }
    }

    private func run<T: Sendable>(_ body: (any SQLExecutor) async throws -> T) async throws -> T {
        let executor = SQLiteExecutor(connection: connection)
        // BEGIN, COMMIT and ROLLBACK run in their own tasks so that cancelling the caller can never leave the
        // shared connection inside an open transaction.
        try await Task { try await executor.raw("BEGIN IMMEDIATE") }.value
        do {
            let result = try await body(executor)
            try await Task { try await executor.raw("COMMIT") }.value
            return result
        } catch {
            try? await Task { try await executor.raw("ROLLBACK") }.value
            throw error
        }
    }

    /// Runs `body` on the connection outside any transaction (statements such as VACUUM refuse to run inside one).
    func transactionless<T: Sendable>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        try await lock.withLock { try await body(connection) }
    }

    public func ping() async throws {
        _ = try await lock.withLock { try await connection.query("SELECT 1", []) }
    }

    public func shutdown() async {
        let connection = self.connection
        // In a task of its own: a caller cancelled during shutdown (a service group cancelling its services) must
        // still close the file, and an already cancelled task's call would be refused before it ran.
        let done = await Task { (try? await connection.close()) != nil }.value
        if done { closed.store(true, ordering: .releasing) }
    }

    // A store dropped without `shutdown()` (start-up failed after opening it) still closes its file: the task keeps
    // the connection alive until it is closed.
    deinit {
        guard !closed.load(ordering: .acquiring) else { return }
        let connection = self.connection
        Task { try? await connection.close() }
    }
}

struct SQLiteExecutor: SQLExecutor {
    let connection: SQLiteConnection
    var dialect: SQLDialect { .sqlite }

    func setTenant(_ scope: TenantScope) async throws {}

    func raw(_ text: String) async throws {
        do {
            _ = try await connection.query(text, [])
        } catch {
            throw Self.map(error)
        }
    }

    func query(_ sql: SQL) async throws -> [SQLRow] {
        let (text, binds) = sql.render(for: .sqlite)
        try SQLValue.checkStorable(binds)
        let rows: [SQLiteRow]
        do {
            rows = try await connection.query(text, binds.map(Self.encode))
        } catch {
            throw Self.map(error)
        }
        return rows.map { row in
            var columns: [String: SQLValue] = [:]
            for column in row.columns {
                columns[column.name] = Self.decode(column.data)
            }
            return SQLRow(columns: columns)
        }
    }

    static func encode(_ value: SQLValue) -> SQLiteData {
        switch value {
        case .null: .null
        case .int(let value): .integer(Int(value))
        case .double(let value): .float(value)
        case .text(let value), .json(let value): .text(value)
        case .bytes(let bytes): .blob(ByteBuffer(bytes: bytes))
        case .bool(let value): .integer(value ? 1 : 0)
        case .uuid(let uuid): .text(uuid.lowercased)
        case .date(let date): .integer(Int((date.clampedToStorableRange.timeIntervalSince1970 * 1_000_000).rounded()))
        }
    }

    static func decode(_ data: SQLiteData) -> SQLValue {
        switch data {
        case .null: .null
        case .integer(let value): .int(Int64(value))
        case .float(let value): .double(value)
        case .text(let text): .text(text)
        case .blob(var buffer): .bytes(buffer.readBytes(length: buffer.readableBytes) ?? [])
        }
    }

    static func map(_ error: any Error) -> any Error {
        guard let error = error as? SQLiteError else { return error }
        let message = error.message
        switch error.reason {
        case .constraintUniqueFailed, .constraintPrimaryKeyFailed:
            return StorageError.uniqueViolation(message)
        case .constraintForeignKeyFailed:
            return StorageError.foreignKeyViolation(message)
        default:
            if message.contains("UNIQUE constraint failed") { return StorageError.uniqueViolation(message) }
            return StorageError.other("SQLite: \(message)")
        }
    }
}

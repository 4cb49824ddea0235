import Foundation
import HeraldCore
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO
import Synchronization

/// The embedded store: one SQLite file in WAL mode, one connection, transactions taken in turn. Transactions run on
/// the store's own thread (``SQLiteThread``): the connection is the store's bottleneck, and a transaction that waited
/// behind the requests queued on Swift's shared executor between two statements held it for nothing.
public final class SQLiteDatabase: Database {
    public let dialect = SQLDialect.sqlite
    private let connection: SQLiteConnection
    private let lock = AsyncLock()
    private let pool = PoolCounter(capacity: 1)
    private let closed = Atomic(false)
    private let thread: SQLiteThread
    public let path: String

    private init(connection: SQLiteConnection, thread: SQLiteThread, path: String) {
        self.connection = connection
        self.thread = thread
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
        let thread = SQLiteThread()
        do {
            connection = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: thread.pool, logger: logger, on: thread.loop
            )
        } catch {
            await thread.shutdown()
            throw StorageError.unavailable("cannot open the database file \(path): \(error)")
        }
        let database = SQLiteDatabase(connection: connection, thread: thread, path: path)
        // WAL lets readers proceed during a write; FULL makes every commit durable across power loss. A 64 MiB page
        // cache (SQLite's default is 2 MiB) keeps the indexes that every beacon batch touches in memory instead of
        // reading their pages back from the file at each commit.
        for pragma in [
            "PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 5000",
            "PRAGMA cache_size = -65536",
        ] {
            _ = try await connection.query(pragma, [])
        }
        return database
    }

    public static func inMemory(logger: Logger) async throws -> SQLiteDatabase {
        let thread = SQLiteThread()
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .memory, threadPool: thread.pool, logger: logger, on: thread.loop)
        } catch {
            await thread.shutdown()
            throw error
        }
        _ = try await connection.query("PRAGMA foreign_keys = ON", [])
        return SQLiteDatabase(connection: connection, thread: thread, path: ":memory:")
    }

    public var poolUse: PoolUse { pool.use }

    public func transaction<T: Sendable>(_ scope: TenantScope, _ body: (any SQLExecutor) async throws -> T) async throws -> T {
        pool.requested()
        defer { pool.released() }
        // On the store's own thread: between statements the transaction goes on at once instead of waiting
        // behind every request queued on the shared executor while it holds the only connection.
        return try await withTaskExecutorPreference(thread.executor) {
            try await lock.withLock {
                pool.leased()
                defer { pool.returned() }
                return try await run(body)
            }
        }
    }

    private func run<T: Sendable>(_ body: (any SQLExecutor) async throws -> T) async throws -> T {
        let executor = SQLiteExecutor(connection: connection)
        // BEGIN, COMMIT and ROLLBACK run in their own tasks so that cancelling the caller can never leave the
        // shared connection inside an open transaction.
        try await Task(executorPreference: thread.executor) { try await executor.raw("BEGIN IMMEDIATE") }.value
        do {
            let result = try await body(executor)
            try await Task(executorPreference: thread.executor) { try await executor.raw("COMMIT") }.value
            return result
        } catch {
            try? await Task(executorPreference: thread.executor) { try await executor.raw("ROLLBACK") }.value
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
        await thread.shutdown()
    }

    // A store dropped without `shutdown()` (start-up failed after opening it) still closes its file: the task keeps
    // the connection alive until it is closed.
    deinit {
        guard !closed.load(ordering: .acquiring) else { return }
        let connection = self.connection
        let thread = self.thread
        Task {
            try? await connection.close()
            await thread.shutdown()
        }
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
        case .binaryArray(_, let bytes): .blob(bytes)
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

/// The threads of one SQLite store: one runs the libsqlite3 calls, the other (an event loop) the transactions' own code.
final class SQLiteThread: Sendable {
    let pool = NIOThreadPool(numberOfThreads: 1)
    let executor = EventLoopTaskExecutor()

    var loop: any EventLoop { executor.loop }

    init() {
        pool.start()
    }

    /// Stops the libsqlite3 thread; calls after this fail instead of waiting. The event loop stops once nothing refers
    /// to its executor any more.
    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}

/// Runs the tasks that prefer it on an event loop of its own. The loop lives as long as the executor: a task that
/// still prefers it can always run, and a job is never handed to a loop that was shut down.
final class EventLoopTaskExecutor: TaskExecutor {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop: any EventLoop

    init() {
        loop = group.next()
    }

    deinit {
        group.shutdownGracefully { _ in }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

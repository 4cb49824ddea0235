import Foundation
import HeraldCore
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO
import Synchronization

/// The embedded store: one SQLite file in WAL mode, one connection for transactions that write, taken in turn, and
/// one beside it for those that only read (``read(_:_:)``), so that reads never wait for a write. Each connection has
/// its own thread (``SQLiteThread``): the writer's connection is the store's bottleneck, and a transaction that waited
/// behind the requests queued on Swift's shared executor between two statements held it for nothing.
public final class SQLiteDatabase: Database {
    public let dialect = SQLDialect.sqlite
    private let writer: Connection
    /// Nil for an in-memory store, whose data a second connection would not see.
    private let reader: Connection?
    private let pool = PoolCounter(capacity: 1)
    private let closed = Atomic(false)
    /// Checkpoints the WAL into the database file from the reader's connection (see ``open(path:logger:)``).
    private let checkpointer: Task<Void, Never>?
    public let path: String

    /// A connection, the lock that gives it to one transaction at a time, and its thread.
    struct Connection: Sendable {
        let connection: SQLiteConnection
        let lock = AsyncLock()
        let thread: SQLiteThread

        static func open(_ storage: SQLiteConnection.Storage, pragmas: [String], logger: Logger) async throws -> Connection {
            let thread = SQLiteThread()
            do {
                let connection = try await SQLiteConnection.open(storage: storage, threadPool: thread.pool, logger: logger, on: thread.loop)
                do {
                    for pragma in pragmas { _ = try await connection.query(pragma, []) }
                } catch {
                    try? await connection.close()
                    throw error
                }
                return Connection(connection: connection, thread: thread)
            } catch {
                await thread.shutdown()
                throw error
            }
        }

        /// Closes the connection in a task of its own: a caller cancelled during shutdown (a service group cancelling
        /// its services) must still close the file, and an already cancelled task's call would be refused before it ran.
        func close() async -> Bool {
            let connection = self.connection
            let done = await Task { (try? await connection.close()) != nil }.value
            await thread.shutdown()
            return done
        }
    }

    private init(writer: Connection, reader: Connection?, path: String, walFramesBeforeTruncate: Int = 16_384) {
        self.writer = writer
        self.reader = reader
        self.path = path
        checkpointer = reader.map { reader in
            Task(executorPreference: reader.thread.executor) {
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.checkpointInterval)
                    _ = try? await reader.lock.withLock {
                        try await Self.checkpoint(reader.connection, truncatingAfter: walFramesBeforeTruncate)
                    }
                }
            }
        }
    }

    /// How often the reader's connection checkpoints. At 50,000 beacon events a second the WAL grows by about 10 MB
    /// in this time.
    static let checkpointInterval = Duration.milliseconds(250)
    /// PASSIVE copies what it can without waiting for the writer or blocking it. But under a steady stream of commits
    /// the WAL is never found fully copied at the start of a write, so SQLite never starts it over and the file only
    /// grows: past `frames` frames (4 KiB pages) a TRUNCATE waits for the write in progress, copies the few frames
    /// left and empties the file.
    static func checkpoint(_ connection: SQLiteConnection, truncatingAfter frames: Int) async throws {
        let written = try await connection.query("PRAGMA wal_checkpoint(PASSIVE)", []).first?.column("log")?.integer ?? 0
        if written > frames {
            _ = try await connection.query("PRAGMA wal_checkpoint(TRUNCATE)", [])
        }
    }

    /// Opens (creating if needed) the database file at `path` with owner-only permissions. Past
    /// `walFramesBeforeTruncate` pages of WAL (64 MiB by default) its checkpoint empties the WAL file.
    public static func open(path: String, logger: Logger, walFramesBeforeTruncate: Int = 16_384) async throws -> SQLiteDatabase {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw StorageError.unavailable("cannot create the database file \(path)")
            }
        }
        // WAL lets readers proceed during a write; FULL makes every commit durable across power loss. A 64 MiB page
        // cache (SQLite's default is 2 MiB) keeps the indexes that every beacon batch touches in memory instead of
        // reading their pages back from the file at each commit. The writer does not checkpoint: SQLite's automatic
        // checkpoint runs inside the commit that crosses 1,000 pages of WAL, holding the only writer while it copies
        // them (a tenth of the writer's time under batched beacons); the reader's connection checkpoints instead.
        let writer: Connection
        do {
            writer = try await Connection.open(
                .file(path: path),
                pragmas: [
                    "PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 5000",
                    "PRAGMA cache_size = -65536", "PRAGMA wal_autocheckpoint = 0",
                ],
                logger: logger
            )
        } catch {
            throw StorageError.unavailable("cannot open the database file \(path): \(error)")
        }
        // Opened once the writer has put the file in WAL mode; `query_only` makes a write on it fail loudly.
        let reader: Connection
        do {
            reader = try await Connection.open(
                .file(path: path), pragmas: ["PRAGMA query_only = ON", "PRAGMA busy_timeout = 5000", "PRAGMA cache_size = -32768"],
                logger: logger
            )
        } catch {
            _ = await writer.close()
            throw StorageError.unavailable("cannot open the database file \(path) for reading: \(error)")
        }
        return SQLiteDatabase(writer: writer, reader: reader, path: path, walFramesBeforeTruncate: walFramesBeforeTruncate)
    }

    public static func inMemory(logger: Logger) async throws -> SQLiteDatabase {
        let writer = try await Connection.open(.memory, pragmas: ["PRAGMA foreign_keys = ON"], logger: logger)
        return SQLiteDatabase(writer: writer, reader: nil, path: ":memory:")
    }

    public var poolUse: PoolUse { pool.use }

    public func transaction<T: Sendable>(_ scope: TenantScope, _ body: (any SQLExecutor) async throws -> T) async throws -> T {
        pool.requested()
        defer { pool.released() }
        // On the store's own thread: between statements the transaction goes on at once instead of waiting
        // behind every request queued on the shared executor while it holds the only connection.
        return try await withTaskExecutorPreference(writer.thread.executor) {
            try await writer.lock.withLock {
                pool.leased()
                defer { pool.returned() }
                return try await Self.run(on: writer, begin: "BEGIN IMMEDIATE", body)
            }
        }
    }

    public func read<T: Sendable>(_ scope: TenantScope, _ body: (any SQLExecutor) async throws -> T) async throws -> T {
        guard let reader else { return try await transaction(scope, body) }
        return try await withTaskExecutorPreference(reader.thread.executor) {
            try await reader.lock.withLock {
                // A deferred transaction: its snapshot is the last commit when it first reads.
                try await Self.run(on: reader, begin: "BEGIN", body)
            }
        }
    }

    private static func run<T: Sendable>(on connection: Connection, begin: String, _ body: (any SQLExecutor) async throws -> T) async throws -> T {
        let executor = SQLiteExecutor(connection: connection.connection)
        let thread = connection.thread
        // BEGIN, COMMIT and ROLLBACK run in their own tasks so that cancelling the caller can never leave the
        // shared connection inside an open transaction.
        try await Task(executorPreference: thread.executor) { try await executor.raw(begin) }.value
        do {
            let result = try await body(executor)
            try await Task(executorPreference: thread.executor) { try await executor.raw("COMMIT") }.value
            return result
        } catch {
            try? await Task(executorPreference: thread.executor) { try await executor.raw("ROLLBACK") }.value
            throw error
        }
    }

    /// Runs `body` on the writer's connection outside any transaction (statements such as VACUUM refuse to run inside
    /// one).
    func transactionless<T: Sendable>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        try await writer.lock.withLock { try await body(writer.connection) }
    }

    public func ping() async throws {
        _ = try await writer.lock.withLock { try await writer.connection.query("SELECT 1", []) }
    }

    public func shutdown() async {
        if let checkpointer {
            checkpointer.cancel()
            await checkpointer.value
        }
        var done = await writer.close()
        if let reader { done = await reader.close() && done }
        if done { closed.store(true, ordering: .releasing) }
    }

    // A store dropped without `shutdown()` (start-up failed after opening it) still closes its file: the task keeps
    // the connections alive until they are closed.
    deinit {
        checkpointer?.cancel()
        guard !closed.load(ordering: .acquiring) else { return }
        let connections = [writer] + (reader.map { [$0] } ?? [])
        Task {
            for connection in connections { _ = await connection.close() }
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

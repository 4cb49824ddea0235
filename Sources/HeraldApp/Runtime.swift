import Foundation
import HeraldCore
import HeraldSecurity
import HeraldStorage
import Logging
import NIOCore
import NIOPosix

/// Start-up steps shared by `herald serve` and `herald migrate`.
public enum HeraldRuntime {
    /// Creates the data directory (owner-only) if needed and checks that Herald can write to it.
    public static func prepareDataDirectory(_ path: String) throws {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ConfigurationError("the data directory \(path) is a file, not a directory") }
        } else {
            do {
                try manager.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw ConfigurationError("cannot create the data directory \(path): \(reason(error))")
            }
        }
        let probe = (path as NSString).appendingPathComponent(".write-test-\(UUID().lowercased)")
        guard manager.createFile(atPath: probe, contents: Data(), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigurationError("the data directory \(path) is not writable")
        }
        try? manager.removeItem(atPath: probe)
    }

    static func reason(_ error: any Error) -> String {
        (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
    }

    /// Every migration set, in the order they apply (see ``ModuleCatalog``).
    public static var migrationSets: [MigrationSet] { ModuleCatalog.migrationSets }

    /// Opens the configured store, runs `body` with it, and closes it. PostgreSQL is probed first so a bad URL
    /// or an unreachable server fails with one clear line.
    public static func withDatabase<T: Sendable>(
        _ config: HeraldConfiguration,
        logger: Logger,
        _ body: @Sendable (any Database) async throws -> T
    ) async throws -> T {
        if let urlText = config.databaseURL {
            let url = try PostgresURL(parsing: urlText)
            try await PostgresDatabase.probe(url, logger: logger)
            let database = PostgresDatabase(url: url, maximumConnections: config.databasePoolSize, logger: logger)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.run() }
                defer { group.cancelAll() }
                return try await body(database)
            }
        }
        try prepareDataDirectory(config.dataDirectory)
        let database = try await SQLiteDatabase.open(path: config.sqlitePath, logger: logger)
        do {
            let result = try await body(database)
            await database.shutdown()
            return result
        } catch {
            await database.shutdown()
            throw error
        }
    }

    /// Applies pending migrations and returns how many ran.
    public static func migrate(_ config: HeraldConfiguration, logger: Logger) async throws -> Int {
        try await withDatabase(config, logger: logger) { database in
            try await Migrator(database: database, logger: logger).migrate(migrationSets)
        }
    }

    /// Bcrypt runs here, never on an event loop or the store's threads.
    static let passwordThreadPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(2, System.coreCount))
        pool.start()
        return pool
    }()
}

import Crypto
import Foundation
import HeraldCore
import HeraldStorage
import Logging
import UsersService

/// `herald backup` and `herald restore`: a backup is a directory holding a consistent copy of the store (SQLite's
/// `VACUUM INTO`, or `pg_dump`'s custom format taken from an exported snapshot), the key file when keys live in
/// the data directory (without it encrypted fields cannot be read back), and `manifest.json` with each file's
/// SHA-256 and every table's row count at the moment of the copy. A restore checks the files before touching
/// anything, then checks the restored store against the counts and recomputes every audit chain.
public enum HeraldBackup {
    public struct Manifest: Codable, Sendable, Equatable {
        public var format: Int
        public var heraldVersion: String
        public var store: String
        public var createdAt: Date
        /// File name → SHA-256 (hex).
        public var files: [String: String]
        /// Table → rows when the copy was taken.
        public var tables: [String: Int]
    }

    public struct Report: Sendable {
        public var manifest: Manifest
        public var lines: [String]
    }

    static let manifestName = "manifest.json"
    static let sqliteName = "herald.sqlite"
    static let postgresName = "herald.pgdump"
    static let keysName = "keys.json"

    // MARK: Backup

    /// Writes a backup of the configured store into `directory`, which must not exist or be empty.
    public static func backup(_ config: HeraldConfiguration, to directory: String, logger: Logger) async throws -> Report {
        try prepareEmptyDirectory(directory)
        var files: [String: String] = [:]
        var tables: [String: Int] = [:]
        let store: String
        if let urlText = config.databaseURL {
            store = "postgres"
            let url = try PostgresURL(parsing: urlText)
            let dump = (directory as NSString).appendingPathComponent(postgresName)
            tables = try await StoreBackup.withPostgresSnapshot(url, logger: logger) { snapshot, counts in
                try await ExternalTool.run(
                    "pg_dump",
                    ["--format=custom", "--snapshot=\(snapshot)", "--file=\(dump)", "--dbname=\(libpq(url))"],
                    password: url.password
                )
                return counts
            }
            files[postgresName] = try sha256(of: dump)
        } else {
            store = "sqlite"
            guard FileManager.default.fileExists(atPath: config.sqlitePath) else {
                throw ConfigurationError("there is no store to back up at \(config.sqlitePath) (set --data-dir or HERALD_DATA_DIR)")
            }
            let copy = (directory as NSString).appendingPathComponent(sqliteName)
            let database = try await SQLiteDatabase.open(path: config.sqlitePath, logger: logger)
            do {
                try await database.copy(to: copy)
                await database.shutdown()
            } catch {
                await database.shutdown()
                throw error
            }
            // Counted from the copy itself: exactly what was written, whatever the live store did meanwhile.
            let copied = try await SQLiteDatabase.open(path: copy, logger: logger)
            tables = try await copied.transaction(.system) { try await StoreBackup.rowCounts(in: $0) }
            await copied.shutdown()
            try protect(copy)
            files[sqliteName] = try sha256(of: copy)
        }
        let keys = (config.dataDirectory as NSString).appendingPathComponent(keysName)
        if FileManager.default.fileExists(atPath: keys) {
            let target = (directory as NSString).appendingPathComponent(keysName)
            try FileManager.default.copyItem(atPath: keys, toPath: target)
            try protect(target)
            files[keysName] = try sha256(of: target)
        }
        let manifest = Manifest(
            format: 1, heraldVersion: HeraldVersion.current, store: store, createdAt: Date(), files: files, tables: tables
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let manifestPath = (directory as NSString).appendingPathComponent(manifestName)
        try encoder.encode(manifest).write(to: URL(fileURLWithPath: manifestPath), options: .atomic)
        try protect(manifestPath)
        var lines = ["backed up the \(store) store: \(tables.count) tables, \(tables.values.reduce(0, +)) rows"]
        if files[keysName] == nil {
            lines.append(
                "the data directory holds no key file (keys come from the environment, or Herald never started): keep the keys safe separately"
            )
        } else {
            lines.append("the backup holds the key file: keep it as secret as the keys themselves")
        }
        return Report(manifest: manifest, lines: lines)
    }

    // MARK: Restore

    /// Restores the backup in `directory` into the configured store, refusing to overwrite a store that has data
    /// unless `force`, then verifies it. Throws when anything does not match.
    public static func restore(_ config: HeraldConfiguration, from directory: String, force: Bool, logger: Logger) async throws -> Report {
        let manifest = try readManifest(directory)
        for (name, expected) in manifest.files.sorted(by: { $0.key < $1.key }) {
            let path = (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: path) else { throw ConfigurationError("the backup lacks \(name), which its manifest lists") }
            guard try sha256(of: path) == expected else {
                throw ConfigurationError("\(name) does not match the checksum in the manifest: the backup is damaged")
            }
        }
        var lines: [String] = []
        if let urlText = config.databaseURL {
            guard manifest.store == "postgres" else {
                throw ConfigurationError("this is a backup of the \(manifest.store) store; restore it without --database-url")
            }
            let url = try PostgresURL(parsing: urlText)
            try await PostgresDatabase.probe(url, logger: logger)
            let existing = try await HeraldRuntime.withDatabase(config, logger: logger) { database in
                try await database.transaction(.system) { tx in
                    guard try await StoreBackup.seesEveryRow(in: tx) else { throw StoreBackup.rowSecurityError(url) }
                    return try await StoreBackup.rowCounts(in: tx)
                }
            }
            if !existing.isEmpty && !force {
                throw ConfigurationError("the database already has \(existing.count) tables; pass --force to replace them with the backup")
            }
            try await ExternalTool.run(
                "pg_restore",
                [
                    // Owners and grants come back as they were (Herald's role owns its tables), so restore as a superuser.
                    "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
                    "--dbname=\(libpq(url))", (directory as NSString).appendingPathComponent(postgresName),
                ],
                password: url.password
            )
        } else {
            guard manifest.store == "sqlite" else {
                throw ConfigurationError("this is a backup of the \(manifest.store) store; restore it with --database-url")
            }
            try HeraldRuntime.prepareDataDirectory(config.dataDirectory)
            let target = config.sqlitePath
            if FileManager.default.fileExists(atPath: target) && !force {
                throw ConfigurationError("\(target) exists; stop Herald and pass --force to replace it with the backup")
            }
            // Copy beside the target, then rename over it: a crash midway leaves the old store or the new one.
            let staging = target + ".restoring"
            try? FileManager.default.removeItem(atPath: staging)
            try FileManager.default.copyItem(atPath: (directory as NSString).appendingPathComponent(sqliteName), toPath: staging)
            try protect(staging)
            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: target + suffix) }
            guard rename(staging, target) == 0 else { throw ConfigurationError("cannot move the restored store into \(target)") }
        }
        if manifest.files[keysName] != nil {
            let target = (config.dataDirectory as NSString).appendingPathComponent(keysName)
            if FileManager.default.fileExists(atPath: target) {
                if try sha256(of: target) != manifest.files[keysName] {
                    guard force else {
                        throw ConfigurationError("\(target) holds other keys than the backup's; pass --force to replace them")
                    }
                    try FileManager.default.removeItem(atPath: target)
                    try FileManager.default.copyItem(atPath: (directory as NSString).appendingPathComponent(keysName), toPath: target)
                }
            } else {
                try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: (directory as NSString).appendingPathComponent(keysName), toPath: target)
            }
            try protect(target)
            lines.append("restored the key file")
        }
        lines += try await verify(config, against: manifest, logger: logger)
        return Report(manifest: manifest, lines: lines)
    }

    /// Compares every table's rows with the manifest and recomputes every audit chain.
    static func verify(_ config: HeraldConfiguration, against manifest: Manifest, logger: Logger) async throws -> [String] {
        try await HeraldRuntime.withDatabase(config, logger: logger) { database in
            let counts = try await database.transaction(.system) { try await StoreBackup.rowCounts(in: $0) }
            var mismatches: [String] = []
            for (table, rows) in manifest.tables.sorted(by: { $0.key < $1.key }) where counts[table] != rows {
                mismatches.append("\(table): \(counts[table].map(String.init) ?? "missing") rows, the backup had \(rows)")
            }
            guard mismatches.isEmpty else {
                throw ConfigurationError("the restored store does not match the backup: " + mismatches.joined(separator: "; "))
            }
            let chains = try await UsersService.checkAuditChains(database: database)
            let broken = chains.filter { !$0.valid }
            guard broken.isEmpty else {
                throw ConfigurationError(
                    "the audit log's hash chain is broken for organization(s) "
                        + broken.map { "\($0.organizationId.lowercased) (\($0.broken.joined(separator: ", ")))" }.joined(separator: "; ")
                )
            }
            return [
                "verified \(manifest.tables.count) tables and \(manifest.tables.values.reduce(0, +)) rows against the backup",
                "verified the audit chains of \(chains.count) organization(s), \(chains.reduce(0) { $0 + $1.records }) records",
            ]
        }
    }

    // MARK: Helpers

    static func readManifest(_ directory: String) throws -> Manifest {
        let path = (directory as NSString).appendingPathComponent(manifestName)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("\(directory) is not a Herald backup (no \(manifestName))")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let manifest: Manifest
        do {
            manifest = try decoder.decode(Manifest.self, from: data)
        } catch {
            throw ConfigurationError("\(path) is not a readable backup manifest: \(error)")
        }
        guard manifest.format == 1 else { throw ConfigurationError("backup format \(manifest.format) is newer than this Herald reads (1)") }
        let allowed: Set<String> = [sqliteName, postgresName, keysName]
        // Names come from the manifest: only the files a backup writes, never a path elsewhere.
        guard Set(manifest.files.keys).isSubset(of: allowed) else { throw ConfigurationError("the manifest names unexpected files") }
        return manifest
    }

    static func prepareEmptyDirectory(_ directory: String) throws {
        let manager = FileManager.default
        if manager.fileExists(atPath: directory) {
            guard (try? manager.contentsOfDirectory(atPath: directory))?.isEmpty == true else {
                throw ConfigurationError("\(directory) exists and is not an empty directory; name a new one for the backup")
            }
        } else {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
    }

    /// A libpq connection URL without the password, which goes in PGPASSWORD instead of the process list.
    static func libpq(_ url: PostgresURL) -> String {
        var components = URLComponents()
        components.scheme = "postgresql"
        components.user = url.username
        components.host = url.host
        components.port = url.port
        components.path = "/" + url.database
        components.queryItems = [URLQueryItem(name: "sslmode", value: url.tls.rawValue)]
        return components.string ?? "postgresql://\(url.host):\(url.port)/\(url.database)"
    }

    static func protect(_ path: String) throws {
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }

    static func sha256(of path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ConfigurationError("cannot read \(path)") }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().hexString
    }
}

/// Runs a PostgreSQL client tool (`pg_dump`, `pg_restore`) found on PATH, failing with its own message.
enum ExternalTool {
    static func run(_ tool: String, _ arguments: [String], password: String? = nil) async throws {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else {
            throw ConfigurationError("\(tool) was not found on PATH; install PostgreSQL's client tools (Debian: postgresql-client)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        if let password { environment["PGPASSWORD"] = password }
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: output, as: UTF8.self).split(separator: "\n").prefix(3).joined(separator: " ")
            throw ConfigurationError("\(tool) failed (exit \(process.terminationStatus)): \(message)")
        }
    }
}

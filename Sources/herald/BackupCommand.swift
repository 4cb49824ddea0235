import ArgumentParser
import Foundation
import HeraldApp

/// `herald backup`: a consistent copy of the store (and the key file) into a new directory.
struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Back up the store (and the key file) into a new directory, while Herald keeps running.",
        discussion: """
            SQLite is copied with VACUUM INTO; PostgreSQL with pg_dump (PostgreSQL's client tools on PATH) from a \
            snapshot, as a superuser or a role with BYPASSRLS: Herald's own role cannot see every tenant's rows. The \
            directory's manifest.json records each file's SHA-256 and every table's row count, which `herald restore` \
            checks. See docs/runbooks/backup-restore.md.
            """
    )

    @Option(help: "A new (or empty) directory to write the backup into.")
    var to: String

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await runReportingErrors {
            let (config, logger) = try store.load()
            let report = try await HeraldBackup.backup(config, to: to, logger: logger)
            for line in report.lines { print("herald: \(line)") }
            print("herald: backup written to \(to)")
        }
    }
}

/// `herald restore`: puts a backup back and verifies it.
struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a backup made by `herald backup` into the store, then verify every table and audit chain.",
        discussion: """
            Stop Herald first. The files are checked against the manifest before anything is touched; a store that \
            already has data is replaced only with --force. After restoring, every table's row count is compared with \
            the backup's and every organization's audit hash chain is recomputed; any difference fails the command.
            """
    )

    @Option(help: "The backup directory.")
    var from: String

    @Flag(help: "Replace a store (and key file) that already holds data.")
    var force = false

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await runReportingErrors {
            let (config, logger) = try store.load()
            let report = try await HeraldBackup.restore(config, from: from, force: force, logger: logger)
            for line in report.lines { print("herald: \(line)") }
            print("herald: restored from \(from)")
        }
    }
}

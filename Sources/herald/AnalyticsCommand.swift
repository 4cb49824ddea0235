import AnalyticsService
import ArgumentParser
import Foundation
import HeraldApp
import HeraldCore

/// `herald analytics …`: operator tasks on analytics data.
struct Analytics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operate on analytics data.",
        subcommands: [Restore.self]
    )

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bring archived raw events back into the store for a range of UTC days (kept 7 days, then dropped again).",
            discussion: """
                Archives live where HERALD_ANALYTICS_ARCHIVE_URL points (default DATA_DIR/archive). Files in an archive \
                storage class (GLACIER, DEEP_ARCHIVE) are first asked to be restored by the bucket; run the command again \
                once the bucket has made them readable (hours for GLACIER).
                """
        )

        @Option(help: "First UTC day to restore, such as 2026-09-01.")
        var from: String

        @Option(help: "Last UTC day to restore (default: the same as --from).")
        var to: String?

        @Option(help: "Restore only this organization's events (its id).")
        var organization: String?

        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await runReportingErrors {
                let (config, logger) = try store.load()
                var organizationId: UUID?
                if let organization {
                    guard let id = UUID(text: organization) else { throw ValidationError("--organization must be an organization id") }
                    organizationId = id
                }
                let days = try await HeraldRuntime.restoreAnalyticsArchive(
                    config, from: from, to: to ?? from, organizationId: organizationId, logger: logger
                )
                if days.isEmpty { print("herald: nothing was archived in that range") }
                for day in days {
                    print("\(day.day) \(day.organizationId.lowercased) \(day.outcome) \(day.rows) rows")
                }
                if days.contains(where: { $0.outcome == "restore requested" }) {
                    print("herald: some archives must first be restored by the bucket; run this again once they are readable")
                }
            }
        }
    }
}

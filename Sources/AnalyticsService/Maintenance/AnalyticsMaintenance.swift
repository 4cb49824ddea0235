import Foundation
import HeraldCore
import HeraldStorage
import Logging

/// The hourly upkeep of analytics data: downsampling (minute and hour rollups kept for their retention, day
/// rollups for ever), raw events past their retention archived and dropped, PostgreSQL's daily partitions
/// created ahead and dropped once empty, and expired export files removed.
struct AnalyticsMaintenance: Sendable {
    let database: any Database
    let retention: AnalyticsRetention
    let archive: EventArchive
    let logger: Logger
    let store = RetentionStore()
    let exports = ExportStore()
    /// Days a restored archive stays in the raw table.
    static let restoredDays = 7
    /// Partitions created ahead of today.
    static let partitionsAhead = 7

    func run(now: Date = Date()) async throws {
        try await preparePartitions(now: now)
        let nowSeconds = Int64(now.timeIntervalSince1970)
        let today = Int(nowSeconds / 86_400)
        let rawCutoff = LocalTime.dayKey(days: today - retention.rawDays)
        let organizations = try await database.transaction(.system) { try await store.organizations(in: $0) }
        var archived = 0
        for organizationId in organizations {
            try await database.transaction(.organization(organizationId)) { tx in
                try await store.trimRollups(
                    minuteCutoff: nowSeconds - Int64(retention.minuteDays) * 86_400, hourCutoff: nowSeconds - Int64(retention.hourDays) * 86_400,
                    stepsCutoffDay: LocalTime.dayKey(days: today - retention.rawDays - 1), in: tx
                )
                _ = try await exports.expire(before: now, in: tx)
            }
            archived += try await archive.archive(organizationId: organizationId, before: rawCutoff, now: now)
        }
        try await archive.dropExpiredRestorations(keepDays: Self.restoredDays, now: now)
        try await dropArchivedPartitions(before: rawCutoff)
        if archived > 0 { logger.info("analytics maintenance archived raw events", metadata: ["rows": "\(archived)"]) }
    }

    /// PostgreSQL: a partition per UTC day from yesterday to a week ahead (no-op elsewhere, and under TimescaleDB).
    func preparePartitions(now: Date) async throws {
        guard database.dialect == .postgres else { return }
        let today = Int(now.timeIntervalSince1970 / 86_400)
        let existing = Set(try await database.transaction(.system) { try await store.partitions(in: $0) })
        if try await database.transaction(.system, { try await store.isHypertable(in: $0) }) { return }
        for days in (today - 1)...(today + Self.partitionsAhead) where !existing.contains("events_p\(LocalTime.dayKey(days: days))") {
            do {
                try await database.transaction(.system) { try await store.createPartition(day: LocalTime.dayKey(days: days), in: $0) }
            } catch {
                // Rows of that day already sit in the default partition: they stay there until archived.
                logger.debug("partition not created", metadata: ["day": "\(LocalTime.dayKey(days: days))", "error": "\(error)"])
            }
        }
    }

    /// Drops the (now empty) partitions of days before the raw cutoff.
    func dropArchivedPartitions(before cutoff: Int) async throws {
        guard database.dialect == .postgres else { return }
        let partitions = try await database.transaction(.system) { try await store.partitions(in: $0) }
        for name in partitions {
            guard let day = Int(name.dropFirst("events_p".count)), day < cutoff else { continue }
            try await database.transaction(.system) { tx in
                // Restored rows may have landed in it since: it stays until they go.
                if try await store.partitionIsEmpty(day: day, in: tx) { try await store.dropPartition(day: day, in: tx) }
            }
        }
    }
}

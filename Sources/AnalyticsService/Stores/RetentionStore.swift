import Foundation
import HeraldCore
import HeraldStorage

/// Deletes what retention no longer keeps, manages PostgreSQL's daily partitions of raw events, and records
/// archived days. Everything here runs for one organization at a time (row-level security), except the
/// partition and archive bookkeeping, which holds no tenant data.
struct RetentionStore: Sendable {
    typealias T = AnalyticsTables

    /// Every organization with analytics data.
    func organizations(in tx: any SQLExecutor) async throws -> [UUID] {
        try await tx.query("SELECT organization_id FROM \(T.tenants) ORDER BY organization_id").map { try $0.get("organization_id") }
    }

    /// Drops minute rollups before `minuteCutoff` and hour rollups before `hourCutoff` (Unix seconds), and visitor
    /// steps of days before `stepsCutoffDay` (funnels reach back as far as raw events).
    func trimRollups(minuteCutoff: Int64, hourCutoff: Int64, stepsCutoffDay: Int, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.rollupMinute) WHERE bucket < \(minuteCutoff)")
        try await tx.execute("DELETE FROM \(T.rollupHour) WHERE bucket < \(hourCutoff)")
        try await tx.execute("DELETE FROM \(T.visitorSteps) WHERE day < \(stepsCutoffDay)")
        // Funnels of those days count 0 from now on, whether or not one was kept.
        try await tx.execute("DELETE FROM \(T.funnelDays) WHERE day < \(stepsCutoffDay)")
        try await tx.execute("DELETE FROM \(T.stepDays) WHERE day < \(stepsCutoffDay)")
    }

    // MARK: Archives

    /// Records one stored archive file and, in the same transaction, the caller deletes the rows it holds: each raw
    /// event is then in the table or in exactly one recorded file.
    func recordArchive(day: Int, organizationId: UUID, location: String, rows: Int, bytes: Int, at now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.archives) (day, organization_id, location, rows, bytes, archived_at, restored_at, restored_rows)
            VALUES (\(day), \(organizationId), \(location), \(rows), \(bytes), \(now), NULL, 0)
            ON CONFLICT (day, organization_id, location) DO UPDATE SET rows = excluded.rows, bytes = excluded.bytes,
                archived_at = excluded.archived_at
            """
        )
    }

    struct Archive: Sendable {
        var day: Int
        var organizationId: UUID
        var location: String
        var rows: Int
        var restoredAt: Date?
    }

    func archives(days: ClosedRange<Int>, organizationId: UUID?, in tx: any SQLExecutor) async throws -> [Archive] {
        let rows: [SQLRow]
        if let organizationId {
            rows = try await tx.query(
                """
                SELECT day, organization_id, location, rows, restored_at FROM \(T.archives)
                WHERE day BETWEEN \(days.lowerBound) AND \(days.upperBound) AND organization_id = \(organizationId) ORDER BY day, location
                """
            )
        } else {
            rows = try await tx.query(
                """
                SELECT day, organization_id, location, rows, restored_at FROM \(T.archives)
                WHERE day BETWEEN \(days.lowerBound) AND \(days.upperBound) ORDER BY day, organization_id, location
                """
            )
        }
        return try rows.map {
            Archive(
                day: try $0.get("day"), organizationId: try $0.get("organization_id"), location: try $0.get("location"), rows: try $0.get("rows"),
                restoredAt: try $0.get("restored_at")
            )
        }
    }

    func markRestored(day: Int, organizationId: UUID, location: String, rows: Int, at now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.archives) SET restored_at = \(now), restored_rows = \(rows)
            WHERE day = \(day) AND organization_id = \(organizationId) AND location = \(location)
            """
        )
    }

    /// Restored days whose restoration is older than `before`: their rows go again (the archive stays).
    func expiredRestorations(before: Date, in tx: any SQLExecutor) async throws -> [(day: Int, organizationId: UUID)] {
        try await tx.query("SELECT DISTINCT day, organization_id FROM \(T.archives) WHERE restored_at < \(before)").map {
            (try $0.get("day"), try $0.get("organization_id"))
        }
    }

    func clearRestoration(day: Int, organizationId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            "UPDATE \(T.archives) SET restored_at = NULL, restored_rows = 0 WHERE day = \(day) AND organization_id = \(organizationId)"
        )
    }

    // MARK: PostgreSQL partitions

    /// Whether raw events are a TimescaleDB hypertable (then chunks, not partitions, hold the days).
    func isHypertable(in tx: any SQLExecutor) async throws -> Bool {
        guard tx.dialect == .postgres else { return false }
        // The migration made a hypertable where TimescaleDB was installed, and a partitioned table otherwise.
        let partitioned = try await tx.queryFirst(
            """
            SELECT 1 AS yes FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'analytics' AND c.relname = 'events'
            """
        )
        return partitioned == nil
    }

    /// The names of the daily partitions that exist (`events_p20261204`).
    func partitions(in tx: any SQLExecutor) async throws -> [String] {
        guard tx.dialect == .postgres else { return [] }
        return try await tx.query(
            """
            SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
            JOIN pg_namespace n ON n.oid = p.relnamespace WHERE n.nspname = 'analytics' AND p.relname = 'events' AND c.relname LIKE 'events_p%'
            """
        ).map { try $0.get("name") }
    }

    /// Creates the partition of one UTC day (`yyyymmdd`). Fails when the default partition already holds rows of that
    /// day; those rows then stay in the default partition until they are archived.
    func createPartition(day: Int, in tx: any SQLExecutor) async throws {
        let start = Int64(LocalTime.days(dayKey: day) ?? 0) * 86_400_000
        let name = "events_p\(day)"
        try await tx.execute(
            "CREATE TABLE IF NOT EXISTS analytics.\(unsafeRaw: name) PARTITION OF \(T.events) FOR VALUES FROM (\(unsafeRaw: String(start))) TO (\(unsafeRaw: String(start + 86_400_000)))"
        )
    }

    /// Whether a day's partition holds no rows (read directly: the partition has no row-level policy of its own).
    func partitionIsEmpty(day: Int, in tx: any SQLExecutor) async throws -> Bool {
        try await tx.queryFirst("SELECT 1 AS one FROM analytics.\(unsafeRaw: "events_p\(day)") LIMIT 1") == nil
    }

    /// Drops a day's partition once its rows were archived.
    func dropPartition(day: Int, in tx: any SQLExecutor) async throws {
        try await tx.execute("DROP TABLE IF EXISTS analytics.\(unsafeRaw: "events_p\(day)")")
    }
}

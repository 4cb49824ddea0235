import Foundation
import HeraldCore
import HeraldStorage

/// An export job and, once built, where its file is: chunks of bytes in `export_chunks`.
struct ExportRecord: Sendable, Equatable {
    var id: UUID
    var siteId: UUID
    var organizationId: UUID
    /// A report kind (`summary`, `funnels`, …) or `events` for the raw events.
    var report: String
    /// `csv` or `pdf`.
    var format: String
    var parameters: [String: String]
    /// `queued`, `running`, `succeeded`, `failed` or `expired`.
    var status: String
    /// 0 to 1.
    var progress: Double
    var rows: Int
    var bytes: Int
    var chunks: Int
    var fileName: String?
    var error: String?
    var createdBy: String
    var createdAt: Date
    var startedAt: Date?
    var finishedAt: Date?
    var expiresAt: Date
}

/// Export jobs and their files. Files are kept in the database in chunks so a large export is written and
/// downloaded a piece at a time, and survives restarts without a shared file system.
struct ExportStore: Sendable {
    typealias T = AnalyticsTables

    func insert(_ export: ExportRecord, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.exports) (id, site_id, organization_id, report, format, parameters, status, progress, rows, bytes, chunks,
                file_name, error, created_by, created_at, started_at, finished_at, expires_at)
            VALUES (\(export.id), \(export.siteId), \(export.organizationId), \(export.report), \(export.format),
                \(try SQLJSON(encoding: export.parameters)), \(export.status), \(export.progress), 0, 0, 0, NULL, NULL,
                \(export.createdBy), \(export.createdAt), NULL, NULL, \(export.expiresAt))
            """
        )
    }

    func find(_ id: UUID, siteId: UUID, in tx: any SQLExecutor) async throws -> ExportRecord? {
        try await tx.queryFirst("SELECT * FROM \(T.exports) WHERE id = \(id) AND site_id = \(siteId)").map(Self.record)
    }

    func find(_ id: UUID, in tx: any SQLExecutor) async throws -> ExportRecord? {
        try await tx.queryFirst("SELECT * FROM \(T.exports) WHERE id = \(id)").map(Self.record)
    }

    /// A site's exports, newest first. Ids are UUIDv7 (time-ordered), so the page boundary is the id alone: comparing
    /// stored times with the cursor's milliseconds would skip or repeat rows on PostgreSQL's microsecond times.
    func list(siteId: UUID, before cursor: TimeCursor?, limit: Int, in tx: any SQLExecutor) async throws -> [ExportRecord] {
        let after: SQL = cursor.map { "AND id < \($0.id)" } ?? ""
        return try await tx.query("SELECT * FROM \(T.exports) WHERE site_id = \(siteId) \(after) ORDER BY id DESC LIMIT \(limit)").map(Self.record)
    }

    /// Exports of a site waiting or running: each site may have only a few at once.
    func countActive(siteId: UUID, in tx: any SQLExecutor) async throws -> Int {
        try await tx.queryFirst(
            "SELECT COUNT(*) AS n FROM \(T.exports) WHERE site_id = \(siteId) AND status IN ('queued', 'running')"
        )?.get("n") ?? 0
    }

    /// Marks the export running and forgets any chunks of an earlier, interrupted run.
    func start(_ id: UUID, at now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.exportChunks) WHERE export_id = \(id)")
        try await tx.execute(
            """
            UPDATE \(T.exports) SET status = 'running', started_at = \(now), progress = 0, rows = 0, bytes = 0, chunks = 0, error = NULL
            WHERE id = \(id)
            """
        )
    }

    /// Appends one chunk of the file and records the progress made, in the same transaction.
    func appendChunk(_ id: UUID, organizationId: UUID, seq: Int, bytes: [UInt8], rows: Int, progress: Double, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            "INSERT INTO \(T.exportChunks) (export_id, organization_id, seq, data) VALUES (\(id), \(organizationId), \(seq), \(bytes))"
        )
        try await tx.execute(
            """
            UPDATE \(T.exports) SET chunks = \(seq + 1), bytes = bytes + \(bytes.count), rows = \(rows), progress = \(progress)
            WHERE id = \(id)
            """
        )
    }

    func finish(_ id: UUID, fileName: String, at now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            "UPDATE \(T.exports) SET status = 'succeeded', progress = 1, file_name = \(fileName), finished_at = \(now) WHERE id = \(id)"
        )
    }

    func fail(_ id: UUID, error: String, at now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.exportChunks) WHERE export_id = \(id)")
        try await tx.execute(
            "UPDATE \(T.exports) SET status = 'failed', error = \(String(error.prefix(500))), finished_at = \(now) WHERE id = \(id)"
        )
    }

    func chunk(_ id: UUID, seq: Int, in tx: any SQLExecutor) async throws -> [UInt8]? {
        try await tx.queryFirst("SELECT data FROM \(T.exportChunks) WHERE export_id = \(id) AND seq = \(seq)")?.get("data")
    }

    /// Drops the files of exports past their expiry (the rows stay, marked `expired`, for the history).
    func expire(before now: Date, in tx: any SQLExecutor) async throws -> Int {
        let expired = try await tx.query(
            "UPDATE \(T.exports) SET status = 'expired' WHERE expires_at < \(now) AND status <> 'expired' RETURNING id"
        )
        for row in expired {
            try await tx.execute("DELETE FROM \(T.exportChunks) WHERE export_id = \(try row.get("id", as: UUID.self))")
        }
        return expired.count
    }

    static func record(_ row: SQLRow) throws -> ExportRecord {
        let parameters: String = try row.get("parameters")
        return ExportRecord(
            id: try row.get("id"), siteId: try row.get("site_id"), organizationId: try row.get("organization_id"), report: try row.get("report"),
            format: try row.get("format"),
            parameters: (try? JSONDecoder().decode([String: String].self, from: Data(parameters.utf8))) ?? [:],
            status: try row.get("status"), progress: try row.get("progress"), rows: try row.get("rows"), bytes: try row.get("bytes"),
            chunks: try row.get("chunks"), fileName: try row.get("file_name"), error: try row.get("error"), createdBy: try row.get("created_by"),
            createdAt: try row.get("created_at"), startedAt: try row.get("started_at"), finishedAt: try row.get("finished_at"),
            expiresAt: try row.get("expires_at")
        )
    }
}

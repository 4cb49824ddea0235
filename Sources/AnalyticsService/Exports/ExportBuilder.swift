import Foundation
import HeraldCore
import HeraldDocuments
import HeraldStorage
import Logging

/// Builds an export's file into chunks, recording progress as it goes. A raw events export is read and written
/// a page at a time, so its size is bounded by the store, not by memory. A build that is interrupted (a crash,
/// a shutdown) starts again from the beginning when its job's lease runs out.
struct ExportBuilder: Sendable {
    let database: any Database
    let engine: ReportEngine
    let retention: AnalyticsRetention
    let logger: Logger
    let exports = ExportStore()
    let raw = RawEventStore()
    let jobs = JobStore()

    /// Bytes per stored chunk, and raw events read per page.
    static let chunkSize = 512 * 1024
    static let pageSize = 5000
    static let maxAttempts = 3

    func build(_ job: Job) async throws {
        guard let id = UUID(text: job.subject) else { return }
        let scope = TenantScope.organization(job.organizationId)
        guard let record = try await database.transaction(scope, { try await exports.find(id, in: $0) }),
            ["queued", "running"].contains(record.status)
        else {
            try await database.transaction(scope) { try await jobs.complete(job, in: $0) }
            return
        }
        try await database.transaction(scope) { try await exports.start(id, at: Date(), in: $0) }
        do {
            let site = try await engine.site(record.siteId, organizationId: record.organizationId)
            let query = try ReportQuery.parse(record.parameters, today: site.today(), retention: retention)
            let format = ReportFile.Format(rawValue: record.format) ?? .csv
            let fileName: String
            if record.report == "events" {
                fileName = ReportFile.fileName(site: site.name, report: "events", from: query.fromDay, to: query.toDay, format: .csv)
                try await writeEvents(record, site: site, query: query, job: job)
            } else {
                let kind = ReportKind(rawValue: record.report) ?? .summary
                fileName = ReportFile.fileName(site: site.name, report: kind.rawValue, from: query.fromDay, to: query.toDay, format: format)
                let rendered = try await engine.run(kind, site: site, query: query)
                let bytes = ReportFile.render(rendered, as: format)
                let rows = rendered.tables.reduce(0) { $0 + $1.rows.count }
                try await database.transaction(scope) { tx in
                    var seq = 0
                    for start in stride(from: 0, to: max(bytes.count, 1), by: Self.chunkSize) {
                        let part = Array(bytes[start..<min(bytes.count, start + Self.chunkSize)])
                        try await exports.appendChunk(
                            id, organizationId: record.organizationId, seq: seq, bytes: part, rows: rows, progress: 0.99, in: tx)
                        seq += 1
                    }
                }
            }
            try await database.transaction(scope) { tx in
                try await exports.finish(id, fileName: fileName, at: Date(), in: tx)
                try await jobs.complete(job, in: tx)
            }
        } catch {
            let message = (error as? HeraldError)?.detail ?? "\(error)"
            logger.warning("export failed", metadata: ["export": "\(id.lowercased)", "attempt": "\(job.attempts)", "error": "\(error)"])
            try await database.transaction(scope) { tx in
                // A refused request is final; an unavailable store or ClickHouse (503) is worth another try.
                let permanent = (error as? HeraldError).map { $0.status != 503 } ?? false
                if job.attempts >= Self.maxAttempts || permanent {
                    try await exports.fail(id, error: message, at: Date(), in: tx)
                    try await jobs.complete(job, in: tx)
                } else {
                    try await jobs.reschedule(job, at: Date().addingTimeInterval(Double(30 * job.attempts)), resetAttempts: false, in: tx)
                }
            }
        }
    }

    /// Every raw event of the period as CSV rows, oldest first.
    private func writeEvents(_ record: ExportRecord, site: ReportSite, query: ReportQuery, job: Job) async throws {
        let scope = TenantScope.organization(record.organizationId)
        let millis = site.clock.startOfDay(dayKey: query.fromDay) * 1000...(site.clock.startOfDay(dayKey: nextDay(query.toDay)) * 1000 - 1)
        let total = try await database.transaction(scope) { try await raw.count(siteId: record.siteId, millis: millis, in: $0) }
        var writer = CSVWriter(byteOrderMark: true)
        writer.appendRow(RawEvent.csvHeader)
        var after: Int64 = 0
        var rows = 0
        var seq = 0
        while true {
            let page = try await database.transaction(scope) { tx in
                try await raw.page(siteId: record.siteId, millis: millis, after: after, limit: Self.pageSize, in: tx)
            }
            for stored in page { writer.appendRow(stored.event.csvRow()) }
            rows += page.count
            after = page.last?.seq ?? after
            let done = page.count < Self.pageSize
            if writer.pendingByteCount >= Self.chunkSize || done {
                let bytes = writer.takeBytes()
                let progress = total == 0 ? 0.99 : min(0.99, Double(rows) / Double(total))
                try await database.transaction(scope) { tx in
                    try await exports.appendChunk(
                        record.id, organizationId: record.organizationId, seq: seq, bytes: bytes, rows: rows, progress: progress, in: tx)
                    try await jobs.extendLease(job, until: Date().addingTimeInterval(AnalyticsWorker.lease), in: tx)
                }
                seq += 1
            }
            if done { break }
        }
    }

    func nextDay(_ day: Int) -> Int { LocalTime.dayKey(days: (LocalTime.days(dayKey: day) ?? 0) + 1) }
}

import Foundation
import HeraldCore
import HeraldStorage

/// A report sent by email on a schedule.
struct ScheduledReportRecord: Sendable, Equatable {
    var id: UUID
    var siteId: UUID
    var organizationId: UUID
    var name: String
    var report: String
    var format: String
    var schedule: ReportSchedule
    var recipients: [String]
    /// Report parameters besides the period (`interval`, `notificationId`, `steps`, …).
    var parameters: [String: String]
    var enabled: Bool
    var nextRunAt: Date
    var lastRunAt: Date?
    var lastStatus: String?
    var createdBy: String
    var createdAt: Date
    var updatedAt: Date
}

/// One sending of a scheduled report, with its attempts.
struct ReportDeliveryRecord: Sendable, Equatable {
    var id: UUID
    var reportId: UUID
    var siteId: UUID
    var organizationId: UUID
    var scheduledFor: Date
    var periodFrom: Int
    var periodTo: Int
    /// `schedule` or `manual`.
    var trigger: String
    var attempts: Int
    /// `queued`, `sending`, `retrying`, `sent` or `failed`.
    var status: String
    var error: String?
    var recipients: Int
    var messageId: String?
    var nextAttemptAt: Date?
    var createdAt: Date
    var updatedAt: Date
    var sentAt: Date?
}

struct ScheduledReportStore: Sendable {
    typealias T = AnalyticsTables

    func insert(_ report: ScheduledReportRecord, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.scheduledReports) (id, site_id, organization_id, name, report, format, frequency, hour, weekday, month_day,
                recipients, parameters, enabled, next_run_at, last_run_at, last_status, created_by, created_at, updated_at)
            VALUES (\(report.id), \(report.siteId), \(report.organizationId), \(report.name), \(report.report), \(report.format),
                \(report.schedule.frequency.rawValue), \(report.schedule.hour), \(report.schedule.weekday), \(report.schedule.monthDay),
                \(try SQLJSON(encoding: report.recipients)), \(try SQLJSON(encoding: report.parameters)), \(report.enabled),
                \(report.nextRunAt), NULL, NULL, \(report.createdBy), \(report.createdAt), \(report.updatedAt))
            """
        )
    }

    func update(_ report: ScheduledReportRecord, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.scheduledReports) SET name = \(report.name), report = \(report.report), format = \(report.format),
                frequency = \(report.schedule.frequency.rawValue), hour = \(report.schedule.hour), weekday = \(report.schedule.weekday),
                month_day = \(report.schedule.monthDay), recipients = \(try SQLJSON(encoding: report.recipients)),
                parameters = \(try SQLJSON(encoding: report.parameters)), enabled = \(report.enabled), next_run_at = \(report.nextRunAt),
                last_run_at = \(report.lastRunAt), last_status = \(report.lastStatus), updated_at = \(report.updatedAt)
            WHERE id = \(report.id)
            """
        )
    }

    func find(_ id: UUID, siteId: UUID? = nil, in tx: any SQLExecutor) async throws -> ScheduledReportRecord? {
        if let siteId {
            return try await tx.queryFirst("SELECT * FROM \(T.scheduledReports) WHERE id = \(id) AND site_id = \(siteId)").map(Self.report)
        }
        return try await tx.queryFirst("SELECT * FROM \(T.scheduledReports) WHERE id = \(id)").map(Self.report)
    }

    func list(siteId: UUID, in tx: any SQLExecutor) async throws -> [ScheduledReportRecord] {
        try await tx.query("SELECT * FROM \(T.scheduledReports) WHERE site_id = \(siteId) ORDER BY created_at, id").map(Self.report)
    }

    func count(siteId: UUID, in tx: any SQLExecutor) async throws -> Int {
        try await tx.queryFirst("SELECT COUNT(*) AS n FROM \(T.scheduledReports) WHERE site_id = \(siteId)")?.get("n") ?? 0
    }

    func delete(_ id: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.reportDeliveries) WHERE report_id = \(id)")
        try await tx.execute("DELETE FROM \(T.scheduledReports) WHERE id = \(id)")
    }

    /// Every scheduled report of a site (when the site is deleted).
    func ids(siteId: UUID, in tx: any SQLExecutor) async throws -> [UUID] {
        try await tx.query("SELECT id FROM \(T.scheduledReports) WHERE site_id = \(siteId)").map { try $0.get("id") }
    }

    // MARK: Deliveries

    func insertDelivery(_ delivery: ReportDeliveryRecord, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.reportDeliveries) (id, report_id, site_id, organization_id, scheduled_for, period_from, period_to, triggered_by,
                attempts, status, error, recipients, message_id, next_attempt_at, created_at, updated_at, sent_at)
            VALUES (\(delivery.id), \(delivery.reportId), \(delivery.siteId), \(delivery.organizationId), \(delivery.scheduledFor),
                \(delivery.periodFrom), \(delivery.periodTo), \(delivery.trigger), \(delivery.attempts), \(delivery.status), \(delivery.error),
                \(delivery.recipients), \(delivery.messageId), \(delivery.nextAttemptAt), \(delivery.createdAt), \(delivery.updatedAt),
                \(delivery.sentAt))
            """
        )
    }

    func updateDelivery(_ delivery: ReportDeliveryRecord, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.reportDeliveries) SET attempts = \(delivery.attempts), status = \(delivery.status), error = \(delivery.error),
                recipients = \(delivery.recipients), message_id = \(delivery.messageId), next_attempt_at = \(delivery.nextAttemptAt),
                updated_at = \(delivery.updatedAt), sent_at = \(delivery.sentAt)
            WHERE id = \(delivery.id)
            """
        )
    }

    func delivery(_ id: UUID, in tx: any SQLExecutor) async throws -> ReportDeliveryRecord? {
        try await tx.queryFirst("SELECT * FROM \(T.reportDeliveries) WHERE id = \(id)").map(Self.delivery)
    }

    /// A report's deliveries, newest first.
    func deliveries(reportId: UUID, limit: Int, in tx: any SQLExecutor) async throws -> [ReportDeliveryRecord] {
        try await tx.query(
            "SELECT * FROM \(T.reportDeliveries) WHERE report_id = \(reportId) ORDER BY created_at DESC, id DESC LIMIT \(limit)"
        ).map(Self.delivery)
    }

    static func report(_ row: SQLRow) throws -> ScheduledReportRecord {
        let recipients: String = try row.get("recipients")
        let parameters: String = try row.get("parameters")
        return ScheduledReportRecord(
            id: try row.get("id"), siteId: try row.get("site_id"), organizationId: try row.get("organization_id"), name: try row.get("name"),
            report: try row.get("report"), format: try row.get("format"),
            schedule: ReportSchedule(
                frequency: ReportSchedule.Frequency(rawValue: try row.get("frequency")) ?? .weekly, hour: try row.get("hour"),
                weekday: try row.get("weekday", as: Int?.self) ?? 1, monthDay: try row.get("month_day", as: Int?.self) ?? 1
            ),
            recipients: (try? JSONDecoder().decode([String].self, from: Data(recipients.utf8))) ?? [],
            parameters: (try? JSONDecoder().decode([String: String].self, from: Data(parameters.utf8))) ?? [:],
            enabled: try row.get("enabled"), nextRunAt: try row.get("next_run_at"), lastRunAt: try row.get("last_run_at"),
            lastStatus: try row.get("last_status"), createdBy: try row.get("created_by"), createdAt: try row.get("created_at"),
            updatedAt: try row.get("updated_at")
        )
    }

    static func delivery(_ row: SQLRow) throws -> ReportDeliveryRecord {
        ReportDeliveryRecord(
            id: try row.get("id"), reportId: try row.get("report_id"), siteId: try row.get("site_id"),
            organizationId: try row.get("organization_id"), scheduledFor: try row.get("scheduled_for"), periodFrom: try row.get("period_from"),
            periodTo: try row.get("period_to"), trigger: try row.get("triggered_by"), attempts: try row.get("attempts"),
            status: try row.get("status"),
            error: try row.get("error"), recipients: try row.get("recipients"), messageId: try row.get("message_id"),
            nextAttemptAt: try row.get("next_attempt_at"), createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at"),
            sentAt: try row.get("sent_at")
        )
    }
}

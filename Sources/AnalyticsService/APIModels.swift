import Foundation
import HeraldCore

/// The shapes the Analytics API returns for exports and scheduled reports; the reports' own shapes live with
/// their computations under `Reports/`.
/// An export as the API shows it.
struct ExportBody: Encodable, Sendable {
    var id: UUID
    var siteId: UUID
    var report: String
    var format: String
    var parameters: [String: String]
    var status: String
    var progress: Double
    var rows: Int
    var bytes: Int
    @Nullable var fileName: String? = nil
    @Nullable var error: String? = nil
    var createdAt: Date
    @Nullable var startedAt: Date? = nil
    @Nullable var finishedAt: Date? = nil
    var expiresAt: Date
    /// Where to poll, and where to download the file once `status` is `succeeded`.
    var links: Links

    struct Links: Encodable, Sendable {
        var `self`: String
        @Nullable var download: String? = nil
    }

    init(_ record: ExportRecord) {
        id = record.id
        siteId = record.siteId
        report = record.report
        format = record.format
        parameters = record.parameters
        status = record.status
        progress = (record.progress * 1000).rounded() / 1000
        rows = record.rows
        bytes = record.bytes
        fileName = record.fileName
        error = record.error
        createdAt = record.createdAt
        startedAt = record.startedAt
        finishedAt = record.finishedAt
        expiresAt = record.expiresAt
        let base = "/sites/\(record.siteId.lowercased)/analytics/exports/\(record.id.lowercased)"
        links = Links(self: base, download: record.status == "succeeded" ? base + "/download" : nil)
    }
}

/// A scheduled report as the API shows it.
struct ScheduledReportBody: Encodable, Sendable {
    var id: UUID
    var siteId: UUID
    var name: String
    var report: String
    var format: String
    var frequency: String
    var hour: Int
    var weekday: Int
    var monthDay: Int
    /// The site's time zone, in which `hour`, `weekday` and `monthDay` are read.
    var timezone: String
    var recipients: [String]
    var parameters: [String: String]
    var enabled: Bool
    var nextRunAt: Date
    @Nullable var lastRunAt: Date? = nil
    @Nullable var lastStatus: String? = nil
    var createdAt: Date
    var updatedAt: Date

    init(_ record: ScheduledReportRecord, timezone: String) {
        id = record.id
        siteId = record.siteId
        name = record.name
        report = record.report
        format = record.format
        frequency = record.schedule.frequency.rawValue
        hour = record.schedule.hour
        weekday = record.schedule.weekday
        monthDay = record.schedule.monthDay
        self.timezone = timezone
        recipients = record.recipients
        parameters = record.parameters
        enabled = record.enabled
        nextRunAt = record.nextRunAt
        lastRunAt = record.lastRunAt
        lastStatus = record.lastStatus
        createdAt = record.createdAt
        updatedAt = record.updatedAt
    }
}

struct ReportDeliveryBody: Encodable, Sendable {
    var id: UUID
    var reportId: UUID
    var status: String
    /// `schedule` or `manual` (sent with `POST …/send`).
    var trigger: String
    var scheduledFor: Date
    /// The first and last day the report covers, in the site's time zone.
    var periodFrom: String
    var periodTo: String
    var attempts: Int
    var recipients: Int
    @Nullable var error: String? = nil
    @Nullable var messageId: String? = nil
    @Nullable var nextAttemptAt: Date? = nil
    var createdAt: Date
    @Nullable var sentAt: Date? = nil

    init(_ record: ReportDeliveryRecord) {
        id = record.id
        reportId = record.reportId
        status = record.status
        trigger = record.trigger
        scheduledFor = record.scheduledFor
        periodFrom = LocalTime.isoDate(dayKey: record.periodFrom)
        periodTo = LocalTime.isoDate(dayKey: record.periodTo)
        attempts = record.attempts
        recipients = record.recipients
        error = record.error
        messageId = record.messageId
        nextAttemptAt = record.nextAttemptAt
        createdAt = record.createdAt
        sentAt = record.sentAt
    }
}

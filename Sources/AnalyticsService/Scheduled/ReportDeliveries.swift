import Foundation
import HeraldCore
import HeraldMail
import HeraldStorage
import Logging

/// Runs scheduled reports when they are due and sends each run by email, retrying what a mail system refused
/// for a while. Every step is a row (the report's next run, the delivery and its attempts), so a restart
/// loses nothing: at worst a message whose acceptance was not yet recorded is sent twice.
struct ReportDeliveries: Sendable {
    let database: any Database
    let engine: ReportEngine
    let mail: any MailTransport
    let from: MailAddress?
    let retention: AnalyticsRetention
    /// Seconds before each retry of a refused send; then the delivery fails.
    let retryDelays: [TimeInterval]
    let logger: Logger
    let reports = ScheduledReportStore()
    let jobs = JobStore()

    /// The report is due: records a delivery for the period before this run, and moves the report to its next run.
    func runSchedule(_ job: Job, now: Date) async throws {
        guard let id = UUID(text: job.subject) else { return try await complete(job) }
        try await database.transaction(.organization(job.organizationId)) { tx in
            guard var report = try await reports.find(id, in: tx), report.enabled else {
                try await jobs.complete(job, in: tx)
                return
            }
            let site = try await engine.catalog.site(report.siteId, in: tx)
            let clock = SiteClock.named(site?.timezone ?? "UTC")
            let runAt = report.nextRunAt
            let period = report.schedule.period(forRunAt: runAt, clock: clock)
            let delivery = ReportDeliveryRecord(
                id: .v7(at: now), reportId: report.id, siteId: report.siteId, organizationId: report.organizationId, scheduledFor: runAt,
                periodFrom: period.from, periodTo: period.to, trigger: "schedule", attempts: 0, status: "queued", error: nil, recipients: 0,
                messageId: nil, nextAttemptAt: now, createdAt: now, updatedAt: now, sentAt: nil
            )
            try await reports.insertDelivery(delivery, in: tx)
            try await jobs.enqueue(.delivery, subject: delivery.id.lowercased, organizationId: report.organizationId, at: now, in: tx)
            // Runs missed while Herald was down are not sent one by one: the next run is the first one after now.
            report.nextRunAt = report.schedule.nextRun(after: max(now, runAt), clock: clock)
            report.lastRunAt = now
            try await reports.update(report, in: tx)
            try await jobs.reschedule(job, at: report.nextRunAt, resetAttempts: true, in: tx)
        }
    }

    /// Renders the report for the delivery's period and hands it to the mail system.
    func deliver(_ job: Job, now: Date) async throws {
        guard let id = UUID(text: job.subject) else { return try await complete(job) }
        let scope = TenantScope.organization(job.organizationId)
        let loaded = try await database.transaction(scope) { tx -> (ReportDeliveryRecord, ScheduledReportRecord?)? in
            guard let delivery = try await reports.delivery(id, in: tx) else { return nil }
            return (delivery, try await reports.find(delivery.reportId, in: tx))
        }
        guard let (initial, found) = loaded, ["queued", "retrying", "sending"].contains(initial.status) else { return try await complete(job) }
        var delivery = initial
        guard let report = found else {
            delivery.status = "failed"
            delivery.error = "the scheduled report was deleted"
            return try await finish(delivery, report: nil, job: job)
        }
        delivery.attempts += 1
        delivery.status = "sending"
        delivery.updatedAt = now
        try await database.transaction(scope) { try await reports.updateDelivery(delivery, in: $0) }

        do {
            let message = try await compose(report, delivery: delivery)
            let receipt = try await mail.send(message)
            delivery.status = "sent"
            delivery.error = nil
            delivery.recipients = message.to.count
            delivery.messageId = receipt.providerMessageId ?? receipt.messageId
            delivery.sentAt = Date()
            delivery.nextAttemptAt = nil
        } catch let error as MailError where error.isTransient && delivery.attempts <= retryDelays.count {
            let delay = max(error.retryAfter ?? 0, retryDelays[delivery.attempts - 1])
            delivery.status = "retrying"
            delivery.error = error.message
            delivery.nextAttemptAt = Date().addingTimeInterval(delay)
        } catch let error as HeraldError where error.status == 503 && delivery.attempts <= retryDelays.count {
            // The report could not be made right now (ClickHouse or the store unavailable): try again later.
            delivery.status = "retrying"
            delivery.error = error.detail
            delivery.nextAttemptAt = Date().addingTimeInterval(retryDelays[delivery.attempts - 1])
        } catch let error as MailError {
            delivery.status = "failed"
            delivery.error = error.message
            delivery.nextAttemptAt = nil
        } catch {
            delivery.status = "failed"
            delivery.error = "the report could not be made: \(error)"
            delivery.nextAttemptAt = nil
            logger.error("scheduled report failed", metadata: ["delivery": "\(delivery.id.lowercased)", "error": "\(error)"])
        }
        delivery.updatedAt = Date()
        try await finish(delivery, report: report, job: job)
    }

    private func finish(_ delivery: ReportDeliveryRecord, report: ScheduledReportRecord?, job: Job) async throws {
        try await database.transaction(.organization(job.organizationId)) { tx in
            try await reports.updateDelivery(delivery, in: tx)
            if var report, delivery.status != "retrying" {
                report.lastStatus = delivery.status
                report.lastRunAt = delivery.updatedAt
                try await reports.update(report, in: tx)
            }
            if delivery.status == "retrying", let next = delivery.nextAttemptAt {
                try await jobs.reschedule(job, at: next, resetAttempts: false, in: tx)
            } else {
                try await jobs.complete(job, in: tx)
            }
        }
        if delivery.status == "failed" {
            logger.warning(
                "a scheduled report was not sent", metadata: ["delivery": "\(delivery.id.lowercased)", "error": "\(delivery.error ?? "")"])
        }
    }

    private func complete(_ job: Job) async throws {
        try await database.transaction(.organization(job.organizationId)) { try await jobs.complete(job, in: $0) }
    }

    /// The email: a short summary in the body and the report attached as PDF or CSV.
    func compose(_ report: ScheduledReportRecord, delivery: ReportDeliveryRecord) async throws -> MailMessage {
        guard let from else { throw MailError.permanent("mail is not configured: set HERALD_MAIL_URL and HERALD_MAIL_FROM") }
        let site = try await engine.site(report.siteId, organizationId: report.organizationId)
        var parameters = report.parameters
        parameters["from"] = LocalTime.isoDate(dayKey: delivery.periodFrom)
        parameters["to"] = LocalTime.isoDate(dayKey: delivery.periodTo)
        let query: ReportQuery
        do {
            query = try ReportQuery.parse(parameters, today: site.today(), retention: retention)
        } catch {
            // A fixed interval may not fit a longer period (hours over a month): fall back to days.
            parameters["interval"] = "day"
            query = try ReportQuery.parse(parameters, today: site.today(), retention: retention)
        }
        let kind = ReportKind(rawValue: report.report) ?? .summary
        let format = ReportFile.Format(rawValue: report.format) ?? .pdf
        let rendered = try await engine.run(kind, site: site, query: query)
        let bytes = ReportFile.render(rendered, as: format)
        let fileName = ReportFile.fileName(site: site.name, report: kind.rawValue, from: query.fromDay, to: query.toDay, format: format)
        var text = "\(rendered.title) for \(site.name), \(rendered.period).\n\n"
        if let totals = rendered.tables.first, let row = totals.rows.first {
            let width = totals.columns.map(\.count).max() ?? 0
            for (column, value) in zip(totals.columns, row) {
                text += column.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value + "\n"
            }
            text += "\n"
        }
        text += "The full report is attached (\(fileName)).\n\nYou receive this because you are a recipient of the scheduled report "
        text += "\"\(report.name)\" of \(site.name) on Herald. Ask a member of the site to remove you, or to pause the report.\n"
        return try MailMessage(
            from: from, to: try report.recipients.map { try MailAddress($0) },
            subject: "\(report.name): \(rendered.title), \(site.name), \(rendered.period)", text: text,
            attachments: [try MailAttachment(fileName: fileName, contentType: format.contentType, bytes: bytes)]
        )
    }
}

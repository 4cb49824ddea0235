import Foundation
import HeraldCore
import HeraldHTTP
import HeraldModules
import HeraldSecurity
import HeraldStorage
import Hummingbird

extension AnalyticsService {
    static let scheduledReportsPerSite = 20
    static let recipientsPerReport = 20
    /// Report parameters a schedule may fix; the period comes from the schedule.
    static let scheduleParameters: Set<String> = ReportQuery.names.subtracting(["from", "to"])

    func addScheduledReportRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        let base = "sites/:siteId/analytics/scheduled-reports"
        router.post(RouterPath(base), use: createScheduledReport)
        router.get(RouterPath(base), use: listScheduledReports)
        router.get(RouterPath(base + "/:reportId"), use: getScheduledReport)
        router.put(RouterPath(base + "/:reportId"), use: updateScheduledReport)
        router.patch(RouterPath(base + "/:reportId"), use: updateScheduledReport)
        router.delete(RouterPath(base + "/:reportId"), use: deleteScheduledReport)
        router.get(RouterPath(base + "/:reportId/deliveries"), use: listReportDeliveries)
        router.post(RouterPath(base + "/:reportId/send"), use: sendScheduledReportNow)
    }

    @Sendable func createScheduledReport(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let grant = try await access.site(from: context, .contentWrite)
        let siteId = grant.siteId
        let site = try await engine.site(siteId, organizationId: grant.organizationId)
        var reader = try await BodyReader(request: request, context: context)
        let now = Date()
        var record = ScheduledReportRecord(
            id: .v7(at: now), siteId: siteId, organizationId: grant.organizationId, name: "", report: ReportKind.summary.rawValue, format: "pdf",
            schedule: ReportSchedule(frequency: .weekly, hour: 8, weekday: 1, monthDay: 1), recipients: [], parameters: [:], enabled: true,
            nextRunAt: now, lastRunAt: nil, lastStatus: nil, createdBy: grant.userId?.lowercased ?? "site-key", createdAt: now, updatedAt: now
        )
        for required in ["name", "frequency", "recipients"] where reader.isMissing(required) {
            reader.validator.add(required, "is required")
        }
        read(&reader, into: &record, site: site)
        try reader.validator.check()
        record.nextRunAt = record.schedule.nextRun(after: now, clock: site.clock)
        try await database.transaction(grant.scope) { tx in
            guard try await scheduledReports.count(siteId: siteId, in: tx) < Self.scheduledReportsPerSite else {
                throw HeraldError.conflict(
                    "A site may have at most \(Self.scheduledReportsPerSite) scheduled reports; delete one first.", slug: "too-many-reports")
            }
            try await scheduledReports.insert(record, in: tx)
            if record.enabled {
                try await jobs.enqueue(.schedule, subject: record.id.lowercased, organizationId: grant.organizationId, at: record.nextRunAt, in: tx)
            }
            try await AuditTrail.record(
                "scheduled_report.created", target: "scheduled_report", record.id, details: Self.auditDetails(record), by: grant,
                meta: RequestMeta(request: request, context: context), in: tx
            )
        }
        worker.wake()
        var response = try JSONResponse(ScheduledReportBody(record, timezone: site.timezone), status: .created)
            .response(from: request, context: context)
        response.headers[.location] = "/sites/\(siteId.lowercased)/analytics/scheduled-reports/\(record.id.lowercased)"
        return response
    }

    @Sendable func listScheduledReports(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<ScheduledReportBody>> {
        let grant = try await access.site(from: context, .analyticsRead)
        let siteId = grant.siteId
        let site = try await engine.site(siteId, organizationId: grant.organizationId)
        let records = try await database.transaction(grant.scope) { try await scheduledReports.list(siteId: siteId, in: $0) }
        return JSONResponse(Page(items: records.map { ScheduledReportBody($0, timezone: site.timezone) }))
    }

    @Sendable func getScheduledReport(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<ScheduledReportBody> {
        let (_, site, record) = try await loadScheduledReport(context, .analyticsRead)
        return JSONResponse(ScheduledReportBody(record, timezone: site.timezone))
    }

    /// Changes any field; a changed schedule or a re-enabled report computes the next run again.
    @Sendable func updateScheduledReport(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<ScheduledReportBody> {
        let (grant, site, current) = try await loadScheduledReport(context, .contentWrite)
        var reader = try await BodyReader(request: request, context: context)
        var record = current
        read(&reader, into: &record, site: site)
        try reader.validator.check()
        let now = Date()
        record.updatedAt = now
        if record.schedule != current.schedule || (record.enabled && !current.enabled) {
            record.nextRunAt = record.schedule.nextRun(after: now, clock: site.clock)
        }
        try await database.transaction(grant.scope) { tx in
            try await scheduledReports.update(record, in: tx)
            if record.enabled {
                try await jobs.enqueue(.schedule, subject: record.id.lowercased, organizationId: grant.organizationId, at: record.nextRunAt, in: tx)
            } else {
                try await jobs.remove(.schedule, subject: record.id.lowercased, in: tx)
            }
            var details = Self.auditDetails(record)
            details["fields"] = reader.object.keys.sorted().joined(separator: ",")
            try await AuditTrail.record(
                "scheduled_report.updated", target: "scheduled_report", record.id, details: details, by: grant,
                meta: RequestMeta(request: request, context: context), in: tx
            )
        }
        worker.wake()
        return JSONResponse(ScheduledReportBody(record, timezone: site.timezone))
    }

    @Sendable func deleteScheduledReport(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let (grant, _, record) = try await loadScheduledReport(context, .contentWrite)
        try await database.transaction(grant.scope) { tx in
            try await scheduledReports.delete(record.id, in: tx)
            try await jobs.remove(.schedule, subject: record.id.lowercased, in: tx)
            try await AuditTrail.record(
                "scheduled_report.deleted", target: "scheduled_report", record.id, details: Self.auditDetails(record), by: grant,
                meta: RequestMeta(request: request, context: context), in: tx
            )
        }
        return Response(status: .noContent)
    }

    /// What the audit log says about a scheduled report: never its recipients' addresses.
    static func auditDetails(_ record: ScheduledReportRecord) -> [String: String] {
        [
            "name": record.name, "report": record.report, "format": record.format, "frequency": record.schedule.frequency.rawValue,
            "recipients": String(record.recipients.count), "enabled": String(record.enabled),
        ]
    }

    @Sendable func listReportDeliveries(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<ReportDeliveryBody>> {
        let (grant, _, record) = try await loadScheduledReport(context, .analyticsRead)
        let limit = try request.limit(default: 20, max: 100)
        let deliveries = try await database.transaction(grant.scope) {
            try await scheduledReports.deliveries(reportId: record.id, limit: limit, in: $0)
        }
        return JSONResponse(Page(items: deliveries.map(ReportDeliveryBody.init)))
    }

    /// Sends the report now for its most recent complete period (a test of the recipients and the mail settings).
    @Sendable func sendScheduledReportNow(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<ReportDeliveryBody> {
        let (grant, site, record) = try await loadScheduledReport(context, .contentWrite)
        try await checkQueryBudget(siteId: record.siteId)
        let now = Date()
        let period = record.schedule.period(forRunAt: now, clock: site.clock)
        let delivery = ReportDeliveryRecord(
            id: .v7(at: now), reportId: record.id, siteId: record.siteId, organizationId: grant.organizationId, scheduledFor: now,
            periodFrom: period.from, periodTo: period.to, trigger: "manual", attempts: 0, status: "queued", error: nil, recipients: 0,
            messageId: nil, nextAttemptAt: now, createdAt: now, updatedAt: now, sentAt: nil
        )
        try await database.transaction(grant.scope) { tx in
            try await scheduledReports.insertDelivery(delivery, in: tx)
            try await jobs.enqueue(.delivery, subject: delivery.id.lowercased, organizationId: grant.organizationId, at: now, in: tx)
        }
        worker.wake()
        return JSONResponse(ReportDeliveryBody(delivery), status: .accepted)
    }

    func loadScheduledReport(
        _ context: HeraldRequestContext, _ permission: Permission
    ) async throws -> (SiteAccess, ReportSite, ScheduledReportRecord) {
        let grant = try await access.site(from: context, permission)
        let siteId = grant.siteId
        let id = try context.uuidParameter("reportId", resource: "Scheduled report")
        guard let record = try await database.transaction(grant.scope, { try await scheduledReports.find(id, siteId: siteId, in: $0) }) else {
            throw HeraldError.notFound("Scheduled report \(id.lowercased)")
        }
        return (grant, try await engine.site(siteId, organizationId: grant.organizationId), record)
    }

    /// Reads the fields a request gives over `record`, collecting every problem.
    func read(_ reader: inout BodyReader, into record: inout ScheduledReportRecord, site: ReportSite) {
        if reader.has("name") {
            record.name = reader.validator.requireText(reader.string("name"), field: "name", maxLength: 100)
        }
        if let report = reader.string("report") {
            if ReportKind(rawValue: report) != nil {
                record.report = report
            } else {
                reader.validator.add("report", "must be one of \(ReportKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if let format = reader.string("format") {
            if ReportFile.Format(rawValue: format) != nil { record.format = format } else { reader.validator.add("format", "must be pdf or csv") }
        }
        if let frequency = reader.string("frequency") {
            if let value = ReportSchedule.Frequency(rawValue: frequency) {
                record.schedule.frequency = value
            } else {
                reader.validator.add("frequency", "must be daily, weekly or monthly")
            }
        }
        func number(_ name: String, _ range: ClosedRange<Int>, _ meaning: String) -> Int? {
            guard reader.has(name), !reader.isNull(name) else { return nil }
            // Compared as a Double first: converting a huge number to Int would trap.
            guard let value = reader.decode(name, as: Double.self), value.rounded() == value,
                (Double(range.lowerBound)...Double(range.upperBound)).contains(value)
            else {
                reader.validator.add(name, "must be \(meaning)")
                return nil
            }
            return Int(value)
        }
        if let hour = number("hour", 0...23, "an hour from 0 to 23 in the site's time zone (\(site.timezone))") { record.schedule.hour = hour }
        if let weekday = number("weekday", 1...7, "a weekday from 1 (Monday) to 7 (Sunday)") { record.schedule.weekday = weekday }
        if let day = number("monthDay", 1...28, "a day of the month from 1 to 28") { record.schedule.monthDay = day }
        if reader.has("recipients") {
            let list = reader.decode("recipients", as: [String].self) ?? []
            if !(1...Self.recipientsPerReport).contains(list.count) {
                reader.validator.add("recipients", "must list 1 to \(Self.recipientsPerReport) email addresses")
            }
            var addresses: [String] = []
            for (index, text) in list.prefix(Self.recipientsPerReport).enumerated() {
                let address = reader.validator.requireEmail(text, field: "recipients.\(index)")
                if !address.isEmpty, !addresses.contains(address) { addresses.append(address) }
            }
            record.recipients = addresses
        }
        if reader.has("parameters") {
            let strings = Self.parameterStrings(reader.decode("parameters", as: [String: JSONValue].self), into: &reader.validator)
            for name in strings.keys where !Self.scheduleParameters.contains(name) {
                reader.validator.add("parameters.\(name)", "is set by the schedule (each run reports on the period before it)")
            }
            let kept = strings.filter { Self.scheduleParameters.contains($0.key) }
            // Checked against the period a run covers (a day, a week, a month), as each run will be.
            let period = record.schedule.period(forRunAt: Date(), clock: site.clock)
            var checked = kept
            checked["from"] = LocalTime.isoDate(dayKey: period.from)
            checked["to"] = LocalTime.isoDate(dayKey: period.to)
            do {
                _ = try ReportQuery.parse(checked, today: site.today(), retention: options.retention)
                record.parameters = kept
            } catch let error as HeraldError {
                for field in error.errors { reader.validator.add("parameters.\(field.field)", field.message) }
            } catch {
                reader.validator.add("parameters", "could not be read")
            }
        }
        if reader.has("enabled") {
            if let enabled = reader.decode("enabled", as: Bool.self) {
                record.enabled = enabled
            } else {
                reader.validator.add("enabled", "must be true or false")
            }
        }
    }
}

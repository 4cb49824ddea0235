import Foundation
import HTTPTypes
import HeraldCore
import HeraldHTTP
import HeraldModules
import HeraldSecurity
import HeraldStorage
import Hummingbird
import NIOCore

extension AnalyticsService {
    /// What an export may contain: any report, or the raw events themselves.
    static let exportReports = ReportKind.allCases.map(\.rawValue) + ["events"]
    /// Exports a site may have waiting or running at once.
    static let activeExportsPerSite = 5
    /// How long a finished export's file is kept.
    static let exportLifetime: TimeInterval = 7 * 86_400
    /// Raw event exports cover at most this many days (a larger one is several exports).
    static let maxEventExportDays = 31

    func addExportRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        router.post("sites/:siteId/analytics/export", use: createExport)
        router.get("sites/:siteId/analytics/exports", use: listExports)
        router.get("sites/:siteId/analytics/exports/:exportId", use: getExport)
        router.get("sites/:siteId/analytics/exports/:exportId/download", use: downloadExport)
    }

    /// Queues an export: `{"report": "summary", "format": "pdf", "parameters": {"from": "2026-11-01", "to": "2026-11-30"}}`.
    /// Answers 202 with the job; poll its `links.self` until `status` is `succeeded`, then download the file.
    @Sendable func createExport(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let grant = try await access.site(from: context, .analyticsRead)
        let siteId = grant.siteId
        var reader = try await BodyReader(request: request, context: context)
        let report = reader.string("report")
        if report == nil, !reader.has("report") {
            reader.validator.add("report", "is required: one of \(Self.exportReports.joined(separator: ", "))")
        }
        if let report, !Self.exportReports.contains(report) {
            reader.validator.add("report", "must be one of \(Self.exportReports.joined(separator: ", "))")
        }
        let formatText = reader.string("format") ?? "csv"
        let format = ReportFile.Format(rawValue: formatText)
        if format == nil { reader.validator.add("format", "must be csv or pdf") }
        if report == "events", format == .pdf { reader.validator.add("format", "raw events export as csv only") }
        let parameters = Self.parameterStrings(reader.decode("parameters", as: [String: JSONValue].self), into: &reader.validator)
        try reader.validator.check()
        guard let report, let format else { throw HeraldError.validation(field: "report", "is required") }

        try await checkQueryBudget(siteId: siteId)
        let site = try await engine.site(siteId, organizationId: grant.organizationId)
        let query: ReportQuery
        do {
            query = try ReportQuery.parse(parameters, today: site.today(), retention: options.retention)
        } catch let error as HeraldError where !error.errors.isEmpty {
            // Named as the body names them.
            throw HeraldError.validation(error.errors.map { FieldError(field: "parameters.\($0.field)", message: $0.message) })
        }
        if report == "events", query.toDay.daysSince(query.fromDay) >= Self.maxEventExportDays {
            throw HeraldError.validation(
                field: "parameters.from", "raw events export at most \(Self.maxEventExportDays) days at a time; split the range")
        }
        let now = Date()
        let record = ExportRecord(
            id: .v7(at: now), siteId: siteId, organizationId: grant.organizationId, report: report, format: format.rawValue,
            parameters: query.parameters, status: "queued", progress: 0, rows: 0, bytes: 0, chunks: 0, fileName: nil, error: nil,
            createdBy: grant.userId?.lowercased ?? "site-key", createdAt: now, startedAt: nil, finishedAt: nil,
            expiresAt: now.addingTimeInterval(Self.exportLifetime)
        )
        try await database.transaction(grant.scope) { tx in
            guard try await exports.countActive(siteId: siteId, in: tx) < Self.activeExportsPerSite else {
                throw HeraldError.tooManyRequests(
                    retryAfter: 30,
                    detail: "This site already has \(Self.activeExportsPerSite) exports waiting or running; wait for one to finish."
                )
            }
            try await exports.insert(record, in: tx)
            try await jobs.enqueue(.export, subject: record.id.lowercased, organizationId: grant.organizationId, at: now, in: tx)
            try await AuditTrail.record(
                "export.created", target: "export", record.id, details: ["report": report, "format": format.rawValue], by: grant,
                meta: RequestMeta(request: request, context: context), in: tx
            )
        }
        worker.wake()
        let body = ExportBody(record)
        var response = try JSONResponse(body, status: .accepted).response(from: request, context: context)
        response.headers[.location] = body.links.`self`
        return response
    }

    @Sendable func listExports(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<ExportBody>> {
        let grant = try await access.site(from: context, .analyticsRead)
        let siteId = grant.siteId
        let limit = try request.limit(default: 20, max: 100)
        var before: TimeCursor?
        if let cursor = request.uri.queryParameters.get("cursor") {
            guard let parsed = TimeCursor(cursor) else { throw HeraldError.validation(field: "cursor", "must be the nextCursor of a previous page") }
            before = parsed
        }
        let records = try await database.transaction(grant.scope) { try await exports.list(siteId: siteId, before: before, limit: limit, in: $0) }
        let next = records.count == limit ? records.last.map { TimeCursor(date: $0.createdAt, id: $0.id).text } : nil
        return JSONResponse(Page(items: records.map(ExportBody.init), nextCursor: next))
    }

    @Sendable func getExport(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<ExportBody> {
        let (_, record) = try await loadExport(context)
        return JSONResponse(ExportBody(record))
    }

    /// The file, streamed a chunk at a time: 409 while it is being built, 410 once expired.
    @Sendable func downloadExport(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let (grant, record) = try await loadExport(context)
        switch record.status {
        case "succeeded": break
        case "expired":
            throw HeraldError(
                status: 410, slug: "export-expired", title: "Gone",
                detail: "This export's file was deleted \(Int(Self.exportLifetime / 86_400)) days after it was made; export again.")
        case "failed":
            throw HeraldError.conflict("This export failed (\(record.error ?? "unknown error")); export again.", slug: "export-failed")
        default:
            throw HeraldError(
                status: 409, slug: "export-not-ready", title: "Conflict",
                detail: "The export is \(record.status) (\(Int(record.progress * 100)) % done); try again shortly.",
                headers: [("Retry-After", "2")]
            )
        }
        let format = ReportFile.Format(rawValue: record.format) ?? .csv
        let fileName = record.fileName ?? "export.\(format.rawValue)"
        let database = self.database
        let exports = self.exports
        let scope = grant.scope
        let chunks = record.chunks
        return Response(
            status: .ok,
            headers: [
                .contentType: format.contentType, .contentLength: String(record.bytes),
                .contentDisposition: "attachment; filename=\"\(fileName)\"", .cacheControl: "private, no-store",
            ],
            body: ResponseBody { writer in
                for seq in 0..<chunks {
                    let bytes = try await database.transaction(scope) { try await exports.chunk(record.id, seq: seq, in: $0) } ?? []
                    try await writer.write(ByteBuffer(bytes: bytes))
                }
                try await writer.finish(nil)
            }
        )
    }

    func loadExport(_ context: HeraldRequestContext) async throws -> (SiteAccess, ExportRecord) {
        let grant = try await access.site(from: context, .analyticsRead)
        let siteId = grant.siteId
        let id = try context.uuidParameter("exportId", resource: "Export")
        guard let record = try await database.transaction(grant.scope, { try await exports.find(id, siteId: siteId, in: $0) }) else {
            throw HeraldError.notFound("Export \(id.lowercased)")
        }
        return (grant, record)
    }

    /// Report parameters given as a JSON object of strings, numbers or booleans, in the form the query string has.
    static func parameterStrings(_ object: [String: JSONValue]?, into validator: inout Validator) -> [String: String] {
        var result: [String: String] = [:]
        for (name, value) in object ?? [:] {
            guard ReportQuery.names.contains(name) else {
                validator.add("parameters.\(name)", "is not a report parameter; use \(ReportQuery.names.sorted().joined(separator: ", "))")
                continue
            }
            switch value {
            case .string(let text): result[name] = text
            case .number(let number): result[name] = number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
            case .bool(let flag): result[name] = flag ? "true" : "false"
            case .null: continue
            default: validator.add("parameters.\(name)", "must be a string or a number")
            }
        }
        return result
    }
}

extension Int {
    /// Days from an earlier `yyyymmdd` day key to this one.
    func daysSince(_ earlier: Int) -> Int { (LocalTime.days(dayKey: self) ?? 0) - (LocalTime.days(dayKey: earlier) ?? 0) }
}

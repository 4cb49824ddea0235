import Foundation
import HeraldCore
import HeraldHTTP
import HeraldSecurity
import HeraldStorage
import Hummingbird

extension AnalyticsService {
    func addReportRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        let reports = router.group("sites/:siteId/analytics")
        reports.get { request, context in
            let (site, query) = try await self.prepare(request, context)
            return JSONResponse(try await self.engine.summary(site, query))
        }
        reports.get("funnels") { request, context in
            let (site, query) = try await self.prepare(request, context)
            return JSONResponse(try await self.engine.funnel(site, query))
        }
        reports.get("cohorts") { request, context in
            let (site, query) = try await self.prepare(request, context)
            return JSONResponse(try await self.engine.cohorts(site, query))
        }
        reports.get("attribution") { request, context in
            let (site, query) = try await self.prepare(request, context)
            return JSONResponse(try await self.engine.attribution(site, query))
        }
        reports.get("ab-tests") { request, context in
            let (site, query) = try await self.prepare(request, context)
            return JSONResponse(try await self.engine.experiments(site, query))
        }
    }

    /// The site of the path (after checking the caller may read its analytics, and the site's report budget) and
    /// the report parameters, validated against the site's calendar.
    func prepare(_ request: Request, _ context: HeraldRequestContext) async throws -> (ReportSite, ReportQuery) {
        let grant = try await access.site(from: context, .analyticsRead)
        let siteId = grant.siteId
        var parameters: [String: String] = [:]
        for (name, value) in request.uri.queryParameters { parameters[String(name)] = String(value) }
        try await checkQueryBudget(siteId: siteId)
        let site = try await engine.site(siteId, organizationId: grant.organizationId)
        return (site, try ReportQuery.parse(parameters, today: site.today(), retention: options.retention))
    }

    /// Reports are heavy: each site gets `queriesPerMinute`, shared by every member and token.
    func checkQueryBudget(siteId: UUID) async throws {
        let now = Date()
        let key = "analytics:queries:\(siteId.lowercased)"
        let hits = await limiter.hit(key, window: .seconds(60), now: now)
        guard hits <= options.queriesPerMinute else {
            let (_, oldest) = await limiter.count(key, window: .seconds(60), now: now)
            let retry = Int(((oldest ?? now).addingTimeInterval(60)).timeIntervalSince(now).rounded(.up))
            throw HeraldError.tooManyRequests(
                retryAfter: retry,
                detail:
                    "This site asked for more than \(options.queriesPerMinute) reports in a minute. Wait \(max(1, retry)) seconds, or export the report instead."
            )
        }
    }
}

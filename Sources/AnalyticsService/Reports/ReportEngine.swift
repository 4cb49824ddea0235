import Foundation
import HeraldCore
import HeraldStorage

/// The site a report is about, with its time zone.
struct ReportSite: Sendable {
    var siteId: UUID
    var organizationId: UUID
    var name: String
    var timezone: String

    var clock: SiteClock { SiteClock.named(timezone) }
    /// Today in the site's time zone.
    func today(now: Date = Date()) -> Int { clock.dayKey(atMillis: now.unixMilliseconds) }
}

/// Computes every report from an ``AnalyticsReader``'s facts. The HTTP handlers, exports and scheduled reports
/// all go through it, so a number is computed one way whichever way it is asked for.
struct ReportEngine: Sendable {
    let reader: any AnalyticsReader
    /// `rollups` or `clickhouse`, shown in each report.
    let source: String
    let database: any Database
    let catalog = CatalogStore()

    /// The site with its name and time zone; UTC until Analytics has heard of the site.
    func site(_ siteId: UUID, organizationId: UUID) async throws -> ReportSite {
        let known = try await database.read(.organization(organizationId)) { try await catalog.site(siteId, in: $0) }
        return ReportSite(
            siteId: siteId, organizationId: organizationId, name: known?.name ?? "Site", timezone: known?.timezone ?? "UTC"
        )
    }

    func notificationNames(_ site: ReportSite) async throws -> [UUID: ExperimentRecord] {
        let records = try await database.read(.organization(site.organizationId)) {
            try await catalog.notifications(siteId: site.siteId, in: $0)
        }
        return Dictionary(records.map { ($0.notificationId, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Any report, as the document its endpoint answers with (for exports and scheduled reports).
    func run(_ kind: ReportKind, site: ReportSite, query: ReportQuery) async throws -> RenderedReport {
        switch kind {
        case .summary: RenderedReport(kind: kind, site: site, query: query, tables: try await summary(site, query).tables)
        case .funnels: RenderedReport(kind: kind, site: site, query: query, tables: try await funnel(site, query).tables)
        case .cohorts: RenderedReport(kind: kind, site: site, query: query, tables: try await cohorts(site, query).tables)
        case .attribution: RenderedReport(kind: kind, site: site, query: query, tables: try await attribution(site, query).tables)
        case .abTests: RenderedReport(kind: kind, site: site, query: query, tables: try await experiments(site, query).tables)
        }
    }
}

/// A report as tables, for CSV and PDF.
struct RenderedReport: Sendable {
    var kind: ReportKind
    var site: ReportSite
    var query: ReportQuery
    var tables: [ReportTable]

    var title: String {
        switch kind {
        case .summary: "Notification performance"
        case .funnels: "Funnel"
        case .cohorts: "Cohorts"
        case .attribution: "Attribution"
        case .abTests: "A/B tests"
        }
    }

    var period: String { "\(LocalTime.isoDate(dayKey: query.fromDay)) to \(LocalTime.isoDate(dayKey: query.toDay)) (\(site.timezone))" }
}

/// One table of a report. `chart` names the numeric column to draw as bars in a PDF, when it has one.
struct ReportTable: Sendable {
    var title: String
    var columns: [String]
    var rows: [[String]]
    var chart: Int?

    init(title: String, columns: [String], rows: [[String]], chart: Int? = nil) {
        self.title = title
        self.columns = columns
        self.rows = rows
        self.chart = chart
    }
}

/// Numbers as tables show them.
enum Cell {
    static func int(_ value: Int) -> String { String(value) }
    static func number(_ value: Double, decimals: Int = 2) -> String { String(format: "%.\(decimals)f", value) }
    static func percent(_ value: Double) -> String { String(format: "%.2f%%", value * 100) }
}

extension SummaryReport {
    var tables: [ReportTable] {
        let metricColumns = [
            "Pageviews", "Impressions", "Hovers", "Clicks", "Closes", "Conversions", "Value", "Unique visitors", "CTR", "Conversion rate",
        ]
        func cells(_ m: Metrics) -> [String] {
            [
                Cell.int(m.pageviews), Cell.int(m.impressions), Cell.int(m.hovers), Cell.int(m.clicks), Cell.int(m.closes),
                Cell.int(m.conversions), Cell.number(m.conversionValue), Cell.int(m.uniqueVisitors), Cell.percent(m.clickThroughRate),
                Cell.percent(m.conversionRate),
            ]
        }
        var perNotification: [[String]] = []
        for notification in notifications {
            perNotification.append([notification.name ?? notification.notificationId.lowercased, "—"] + cells(notification.metrics))
            for variant in notification.variants {
                perNotification.append(
                    [notification.name ?? notification.notificationId.lowercased, variant.name ?? variant.variantId.lowercased]
                        + cells(variant.metrics)
                )
            }
        }
        return [
            ReportTable(title: "Totals", columns: metricColumns, rows: [cells(totals)]),
            ReportTable(
                title: "Over time (\(interval))",
                columns: ["Start", "Pageviews", "Impressions", "Hovers", "Clicks", "Closes", "Conversions", "Value", "Unique visitors"],
                rows: series.map {
                    [
                        $0.start, Cell.int($0.pageviews), Cell.int($0.impressions), Cell.int($0.hovers), Cell.int($0.clicks), Cell.int($0.closes),
                        Cell.int($0.conversions), Cell.number($0.conversionValue), $0.uniqueVisitors.map(Cell.int) ?? "",
                    ]
                },
                chart: 2
            ),
            ReportTable(title: "Per notification and variant", columns: ["Notification", "Variant"] + metricColumns, rows: perNotification),
        ]
    }
}

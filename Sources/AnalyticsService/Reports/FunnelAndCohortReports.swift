import Foundation
import HeraldCore

struct FunnelStep: Codable, Sendable, Equatable {
    var name: String
    /// Visitors who reached this step after every earlier one, within the window of the first.
    var visitors: Int
    /// Visitors lost since the previous step.
    var dropOff: Int
    /// visitors ÷ the previous step's visitors (1 for the first step with visitors).
    var conversionFromPrevious: Double
    /// visitors ÷ the first step's visitors.
    var conversionFromFirst: Double
}

/// `GET /sites/{siteId}/analytics/funnels`.
struct FunnelReport: Codable, Sendable, Equatable {
    var siteId: UUID
    var timezone: String
    var from: String
    var to: String
    @Nullable var notificationId: UUID? = nil
    var windowMinutes: Int
    var steps: [FunnelStep]
    var source: String

    var tables: [ReportTable] {
        [
            ReportTable(
                title: "Funnel (within \(windowMinutes) minutes, per visitor and day)",
                columns: ["Step", "Visitors", "Drop-off", "From previous", "From first"],
                rows: steps.map {
                    [
                        $0.name, Cell.int($0.visitors), Cell.int($0.dropOff), Cell.percent($0.conversionFromPrevious),
                        Cell.percent($0.conversionFromFirst),
                    ]
                },
                chart: 1
            )
        ]
    }
}

struct CohortWeek: Codable, Sendable, Equatable {
    /// Weeks since the cohort's first week (0 is that week).
    var index: Int
    var conversions: Int
    var conversionValue: Double
    /// conversions ÷ the cohort's new visitors.
    var conversionsPerVisitor: Double
}

struct Cohort: Codable, Sendable, Equatable {
    /// The Monday of the week these visitors first saw a notification.
    var week: String
    var newVisitors: Int
    var weeks: [CohortWeek]
}

/// `GET /sites/{siteId}/analytics/cohorts`.
struct CohortReport: Codable, Sendable, Equatable {
    var siteId: UUID
    var timezone: String
    var from: String
    var to: String
    var cohorts: [Cohort]
    var source: String

    var tables: [ReportTable] {
        let width = (cohorts.map { $0.weeks.map(\.index).max() ?? 0 }.max() ?? 0) + 1
        return [
            ReportTable(
                title: "Conversions by week since first seen",
                columns: ["Cohort week", "New visitors"] + (0..<width).map { "Week \($0)" },
                rows: cohorts.map { cohort in
                    [cohort.week, Cell.int(cohort.newVisitors)]
                        + (0..<width).map { index in cohort.weeks.first { $0.index == index }.map { Cell.int($0.conversions) } ?? "0" }
                },
                chart: 1
            )
        ]
    }
}

extension ReportEngine {
    /// Maps a funnel step name to the visitor step it counts, for a notification or the whole site.
    static func visitorStep(_ name: String, notificationId: UUID?) -> String {
        let suffix = notificationId.map { ":" + $0.lowercased } ?? ""
        switch name {
        case "pageview": return "p"
        case "impression": return "i" + suffix
        case "hover": return "h" + suffix
        case "click": return "k" + suffix
        case "conversion": return "c"
        default: return "g:" + name.dropFirst(5)
        }
    }

    func funnel(_ site: ReportSite, _ query: ReportQuery) async throws -> FunnelReport {
        let steps = query.steps.map { Self.visitorStep($0, notificationId: query.notificationId) }
        let counts = try await reader.funnel(
            siteId: site.siteId, organizationId: site.organizationId, days: query.days, steps: steps,
            windowMillis: Int64(query.windowMinutes) * 60_000
        )
        var result: [FunnelStep] = []
        for (index, name) in query.steps.enumerated() {
            let visitors = index < counts.count ? counts[index] : 0
            let previous = index == 0 ? visitors : result[index - 1].visitors
            let first = result.first?.visitors ?? visitors
            result.append(
                FunnelStep(
                    name: name, visitors: visitors, dropOff: index == 0 ? 0 : previous - visitors,
                    conversionFromPrevious: index == 0 ? (visitors > 0 ? 1 : 0) : ratio(Double(visitors), Double(previous)),
                    conversionFromFirst: ratio(Double(visitors), Double(first))
                )
            )
        }
        return FunnelReport(
            siteId: site.siteId, timezone: site.timezone, from: LocalTime.isoDate(dayKey: query.fromDay), to: LocalTime.isoDate(dayKey: query.toDay),
            notificationId: query.notificationId, windowMinutes: query.windowMinutes, steps: result, source: source
        )
    }

    /// Weeks a cohort is followed after its first.
    static let cohortWeeks = 52

    func cohorts(_ site: ReportSite, _ query: ReportQuery) async throws -> CohortReport {
        let weeks = LocalTime.weekKey(dayKey: query.fromDay)...LocalTime.weekKey(dayKey: query.toDay)
        let facts = try await reader.cohorts(siteId: site.siteId, organizationId: site.organizationId, weeks: weeks)
        var byWeek: [Int: (newVisitors: Int, weeks: [Int: (Int, Double)])] = [:]
        for fact in facts {
            var entry = byWeek[fact.cohortWeek] ?? (0, [:])
            entry.newVisitors += fact.newVisitors
            let current = entry.weeks[fact.weekIndex] ?? (0, 0)
            entry.weeks[fact.weekIndex] = (current.0 + fact.conversions, current.1 + fact.value)
            byWeek[fact.cohortWeek] = entry
        }
        // Every week of the range, so a cohort with no one is shown as empty rather than missing.
        var cohorts: [Cohort] = []
        var week = weeks.lowerBound
        let todayWeek = LocalTime.weekKey(dayKey: site.today())
        while week <= weeks.upperBound {
            let entry = byWeek[week] ?? (0, [:])
            // Cohorts are followed for a year at most: a table over old ranges stays a table, not megabytes of zeros.
            let elapsed = max(0, ((LocalTime.days(dayKey: todayWeek) ?? 0) - (LocalTime.days(dayKey: week) ?? 0)) / 7)
            let width = min(Self.cohortWeeks, max(elapsed, entry.weeks.keys.max() ?? 0))
            cohorts.append(
                Cohort(
                    week: LocalTime.isoDate(dayKey: week), newVisitors: entry.newVisitors,
                    weeks: (0...width).map { index in
                        let (conversions, value) = entry.weeks[index] ?? (0, 0)
                        return CohortWeek(
                            index: index, conversions: conversions, conversionValue: (value * 100).rounded() / 100,
                            conversionsPerVisitor: ratio(Double(conversions), Double(entry.newVisitors))
                        )
                    }
                )
            )
            week = LocalTime.dayKey(days: (LocalTime.days(dayKey: week) ?? 0) + 7)
        }
        return CohortReport(
            siteId: site.siteId, timezone: site.timezone, from: LocalTime.isoDate(dayKey: weeks.lowerBound),
            to: LocalTime.isoDate(dayKey: query.toDay), cohorts: cohorts, source: source
        )
    }
}

import Foundation
import HeraldContracts
import HeraldCore

/// Rounds a ratio for display: four decimals, 0 when the denominator is 0.
func ratio(_ numerator: Double, _ denominator: Double) -> Double {
    denominator == 0 ? 0 : ((numerator / denominator) * 10_000).rounded() / 10_000
}

/// Counters with the rates derived from them, as every report shows them.
struct Metrics: Codable, Sendable, Equatable {
    var pageviews = 0
    var impressions = 0
    var hovers = 0
    var clicks = 0
    var closes = 0
    var conversions = 0
    var conversionValue = 0.0
    /// Unique visitors: distinct pseudonymous visitors per day, summed over the days (ids rotate daily).
    var uniqueVisitors = 0
    /// clicks ÷ impressions.
    var clickThroughRate = 0.0
    /// conversions ÷ unique visitors.
    var conversionRate = 0.0

    init(_ counters: Counters = Counters(), uniqueVisitors: Int = 0) {
        pageviews = counters.pageviews
        impressions = counters.impressions
        hovers = counters.hovers
        clicks = counters.clicks
        closes = counters.closes
        conversions = counters.conversions
        conversionValue = (counters.conversionValue * 100).rounded() / 100
        self.uniqueVisitors = uniqueVisitors
        clickThroughRate = ratio(Double(clicks), Double(impressions))
        conversionRate = ratio(Double(conversions), Double(uniqueVisitors))
    }
}

struct SeriesPoint: Codable, Sendable, Equatable {
    /// The bucket's start in the site's time zone (ISO 8601 with offset).
    var start: String
    var pageviews: Int
    var impressions: Int
    var hovers: Int
    var clicks: Int
    var closes: Int
    var conversions: Int
    var conversionValue: Double
    /// Per day only: unique visitors cannot be split below the day their ids are salted for.
    @Nullable var uniqueVisitors: Int? = nil
}

struct VariantSummary: Codable, Sendable, Equatable {
    var variantId: UUID
    @Nullable var name: String? = nil
    var metrics: Metrics
}

struct NotificationSummary: Codable, Sendable, Equatable {
    var notificationId: UUID
    @Nullable var name: String? = nil
    var metrics: Metrics
    var variants: [VariantSummary]
}

struct BotSummary: Codable, Sendable, Equatable {
    /// Beacons from self-declared crawlers in the range, excluded from every number above.
    var beacons: Int
}

/// `GET /sites/{siteId}/analytics`.
struct SummaryReport: Codable, Sendable, Equatable {
    var siteId: UUID
    var timezone: String
    var from: String
    var to: String
    var interval: String
    @Nullable var notificationId: UUID? = nil
    @Nullable var variantId: UUID? = nil
    var totals: Metrics
    var series: [SeriesPoint]
    var notifications: [NotificationSummary]
    /// Conversions tracked while no notification had been seen (in the last 7 days, by the widget's record).
    var unattributedConversions: Int
    var bots: BotSummary
    /// Where the numbers came from: `rollups` or `clickhouse`.
    var source: String
}

extension ReportEngine {
    func summary(_ site: ReportSite, _ query: ReportQuery) async throws -> SummaryReport {
        let clock = SiteClock.named(site.timezone)
        let buckets: ClosedRange<Int64>
        switch query.interval {
        case .day:
            buckets = Int64(query.fromDay)...Int64(query.toDay)
        case .hour, .minute:
            let start = clock.startOfDay(dayKey: query.fromDay)
            let end = clock.startOfDay(dayKey: LocalTime.dayKey(days: (LocalTime.days(dayKey: query.toDay) ?? 0) + 1)) - 1
            buckets = start...end
        }
        // Totals and per-notification numbers always come from day rollups; the series from the asked granularity.
        let dayFacts = try await reader.counters(
            siteId: site.siteId, organizationId: site.organizationId, granularity: .day, buckets: Int64(query.fromDay)...Int64(query.toDay)
        )
        let seriesFacts =
            query.interval == .day
            ? dayFacts
            : try await reader.counters(siteId: site.siteId, organizationId: site.organizationId, granularity: query.interval, buckets: buckets)
        let uniques = try await reader.uniques(siteId: site.siteId, organizationId: site.organizationId, days: query.days)
        let bots = try await reader.bots(siteId: site.siteId, organizationId: site.organizationId, days: query.days)
        let names = try await notificationNames(site)

        func included(_ fact: CounterFact) -> Bool {
            if let notificationId = query.notificationId, fact.notificationId != notificationId { return false }
            if let variantId = query.variantId, fact.variantId != variantId { return false }
            return true
        }
        let totalsScope: String
        if let notificationId = query.notificationId {
            totalsScope = query.variantId.map { "v:\(notificationId.lowercased):\($0.lowercased)" } ?? "n:\(notificationId.lowercased)"
        } else {
            totalsScope = ""
        }
        var uniquesByScope: [String: Int] = [:]
        var uniquesByDay: [Int: Int] = [:]
        for fact in uniques {
            uniquesByScope[fact.scope, default: 0] += fact.visitors
            if fact.scope == totalsScope { uniquesByDay[fact.day, default: 0] += fact.visitors }
        }

        var totals = Counters()
        var unattributed = 0
        var perNotification: [UUID: (Counters, [UUID: Counters])] = [:]
        for fact in dayFacts where included(fact) {
            totals.add(fact.counters)
            guard fact.notificationId != noneId else {
                unattributed += fact.counters.conversions
                continue
            }
            var entry = perNotification[fact.notificationId] ?? (Counters(), [:])
            entry.0.add(fact.counters)
            if fact.variantId != noneId { entry.1[fact.variantId, default: Counters()].add(fact.counters) }
            perNotification[fact.notificationId] = entry
        }
        let notifications = perNotification.map { id, entry in
            let n = id.lowercased
            return NotificationSummary(
                notificationId: id, name: names[id]?.name,
                metrics: Metrics(entry.0, uniqueVisitors: uniquesByScope["n:" + n] ?? 0),
                variants: entry.1.map { variant, counters in
                    VariantSummary(
                        variantId: variant, name: names[id]?.variants.first { $0.id == variant }?.name,
                        metrics: Metrics(counters, uniqueVisitors: uniquesByScope["v:\(n):\(variant.lowercased)"] ?? 0)
                    )
                }.sorted { $0.variantId.lowercased < $1.variantId.lowercased }
            )
        }.sorted { $0.notificationId.lowercased < $1.notificationId.lowercased }

        var byBucket: [Int64: Counters] = [:]
        for fact in seriesFacts where included(fact) { byBucket[fact.bucket, default: Counters()].add(fact.counters) }
        let series = Self.bucketStarts(query: query, clock: clock, buckets: buckets).map { bucket, start in
            let c = byBucket[bucket] ?? Counters()
            return SeriesPoint(
                start: start, pageviews: c.pageviews, impressions: c.impressions, hovers: c.hovers, clicks: c.clicks, closes: c.closes,
                conversions: c.conversions, conversionValue: (c.conversionValue * 100).rounded() / 100,
                uniqueVisitors: query.interval == .day ? uniquesByDay[Int(bucket)] ?? 0 : nil
            )
        }
        return SummaryReport(
            siteId: site.siteId, timezone: site.timezone, from: LocalTime.isoDate(dayKey: query.fromDay), to: LocalTime.isoDate(dayKey: query.toDay),
            interval: query.interval.rawValue, notificationId: query.notificationId, variantId: query.variantId,
            totals: Metrics(totals, uniqueVisitors: uniquesByScope[totalsScope] ?? 0), series: series, notifications: notifications,
            unattributedConversions: query.notificationId == nil ? unattributed : 0, bots: BotSummary(beacons: bots), source: source
        )
    }

    /// Every bucket of the range with its label, zeros included, so a chart has no gaps.
    static func bucketStarts(query: ReportQuery, clock: SiteClock, buckets: ClosedRange<Int64>) -> [(Int64, String)] {
        switch query.interval {
        case .day:
            let first = LocalTime.days(dayKey: query.fromDay) ?? 0
            let last = LocalTime.days(dayKey: query.toDay) ?? first
            return (first...max(first, last)).map { days in
                let key = LocalTime.dayKey(days: days)
                return (Int64(key), ISO8601.local(seconds: clock.startOfDay(dayKey: key), clock: clock))
            }
        case .hour:
            var result: [(Int64, String)] = []
            var seconds = buckets.lowerBound
            while seconds <= buckets.upperBound {
                let start = clock.hourStart(atMillis: seconds * 1000)
                if result.last?.0 != start { result.append((start, ISO8601.local(seconds: start, clock: clock))) }
                seconds += 3600
            }
            return result
        case .minute:
            return stride(from: buckets.lowerBound / 60 * 60, through: buckets.upperBound, by: 60).map {
                ($0, ISO8601.local(seconds: $0, clock: clock))
            }
        }
    }
}

extension ISO8601 {
    /// `2026-12-04T09:00:00-06:00`: a moment written in a site's time zone.
    static func local(seconds: Int64, clock: SiteClock) -> String {
        let offset = clock.offset(atMillis: seconds * 1000)
        let local = seconds + Int64(offset)
        let days = Int(local >= 0 ? local / 86_400 : (local - 86_399) / 86_400)
        let (y, m, d) = LocalTime.civil(days: days)
        let secondOfDay = Int(local - Int64(days) * 86_400)
        let magnitude = abs(offset)
        let date = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, secondOfDay / 3600, secondOfDay / 60 % 60, secondOfDay % 60)
        return date + (offset < 0 ? "-" : "+") + String(format: "%02d:%02d", magnitude / 3600, magnitude / 60 % 60)
    }
}

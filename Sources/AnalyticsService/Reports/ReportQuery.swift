import Foundation
import HeraldCore

/// The reports Analytics answers, by the name exports and scheduled reports use.
enum ReportKind: String, Sendable, CaseIterable, Codable {
    case summary
    case funnels
    case cohorts
    case attribution
    case abTests = "ab-tests"
}

/// How long each kind of data is kept (HERALD_ANALYTICS_* settings).
public struct AnalyticsRetention: Sendable {
    /// Minute rollups, in days.
    public var minuteDays: Int
    /// Hour rollups, in days.
    public var hourDays: Int
    /// Raw events (and the visitor steps funnels use), in days, before they are archived and dropped.
    public var rawDays: Int

    public init(minuteDays: Int = 7, hourDays: Int = 90, rawDays: Int = 90) {
        self.minuteDays = minuteDays
        self.hourDays = hourDays
        self.rawDays = rawDays
    }
}

/// The parameters every report shares, read from a query string or an export's stored parameters, with every
/// problem collected under the parameter's name.
struct ReportQuery: Sendable, Equatable {
    var fromDay: Int
    var toDay: Int
    var interval: Granularity
    var notificationId: UUID?
    var variantId: UUID?
    /// Funnels: step names (`impression`, `hover`, `click`, `conversion`, `pageview`, `goal:<name>`).
    var steps: [String]
    var windowMinutes: Int
    /// Attribution.
    var windowDays: Int
    var model: String
    var halfLifeDays: Double

    static let maxRangeDays = 366
    static let funnelSteps: Set<String> = ["pageview", "impression", "hover", "click", "conversion"]
    static let models = AttributionTally.models

    /// The parameters a request may carry, for exports to check theirs.
    static let names: Set<String> = [
        "from", "to", "interval", "notificationId", "variantId", "steps", "window", "windowDays", "model", "halfLifeDays",
    ]

    init(
        fromDay: Int, toDay: Int, interval: Granularity = .day, notificationId: UUID? = nil, variantId: UUID? = nil,
        steps: [String] = ["impression", "hover", "click", "conversion"], windowMinutes: Int = 1440,
        windowDays: Int = AttributionTally.rollupWindowDays,
        model: String = "all", halfLifeDays: Double = AttributionTally.rollupHalfLifeDays
    ) {
        self.fromDay = fromDay
        self.toDay = toDay
        self.interval = interval
        self.notificationId = notificationId
        self.variantId = variantId
        self.steps = steps
        self.windowMinutes = windowMinutes
        self.windowDays = windowDays
        self.model = model
        self.halfLifeDays = halfLifeDays
    }

    /// Parses and validates; `today` is the site's current day. Throws a 422 naming every bad parameter.
    static func parse(_ parameters: [String: String], today: Int, retention: AnalyticsRetention) throws -> ReportQuery {
        var validator = Validator()
        func day(_ name: String) -> Int? {
            guard let text = parameters[name] else { return nil }
            guard let key = LocalTime.dayKey(isoDate: text) else {
                validator.add(name, "must be a date like 2026-11-29 (the site's days)")
                return nil
            }
            return key
        }
        let todayDays = LocalTime.days(dayKey: today) ?? 0
        let to = day("to") ?? today
        let toDays = LocalTime.days(dayKey: to) ?? todayDays
        let from = day("from") ?? LocalTime.dayKey(days: toDays - 29)
        let fromDays = LocalTime.days(dayKey: from) ?? toDays
        if fromDays > toDays { validator.add("from", "must not be after to") }
        if toDays - fromDays >= maxRangeDays { validator.add("from", "must be at most \(maxRangeDays) days before to") }

        var query = ReportQuery(fromDay: from, toDay: to)
        if let text = parameters["interval"] {
            if let interval = Granularity(rawValue: text) {
                query.interval = interval
                let span = toDays - fromDays + 1
                switch interval {
                case .minute:
                    if span > 2 { validator.add("interval", "minute series cover at most 2 days; choose a shorter range or hour") }
                    if todayDays - fromDays >= retention.minuteDays {
                        validator.add("interval", "minute counts are kept \(retention.minuteDays) days; use hour or day for older ranges")
                    }
                case .hour:
                    if span > 31 { validator.add("interval", "hour series cover at most 31 days; choose a shorter range or day") }
                    if todayDays - fromDays >= retention.hourDays {
                        validator.add("interval", "hour counts are kept \(retention.hourDays) days; use day for older ranges")
                    }
                case .day: break
                }
            } else {
                validator.add("interval", "must be minute, hour or day")
            }
        }
        if let text = parameters["notificationId"] {
            if let id = UUID(text: text) { query.notificationId = id } else { validator.add("notificationId", "must be a notification id") }
        }
        if let text = parameters["variantId"] {
            if let id = UUID(text: text) { query.variantId = id } else { validator.add("variantId", "must be a variant id") }
            if parameters["notificationId"] == nil { validator.add("variantId", "needs notificationId") }
        }
        if let text = parameters["steps"] {
            let steps = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            if !(2...8).contains(steps.count) { validator.add("steps", "must list 2 to 8 comma-separated steps") }
            for step in steps where !funnelSteps.contains(step) {
                let goal = step.hasPrefix("goal:") ? String(step.dropFirst(5)) : ""
                if goal.isEmpty || goal.count > 100 || goal.containsControlCharacters {
                    validator.add("steps", "'\(step.prefix(40))' is not a step: use pageview, impression, hover, click, conversion or goal:<name>")
                }
            }
            query.steps = steps
        }
        if let text = parameters["window"] {
            if let minutes = Int(text), (1...1440).contains(minutes) {
                query.windowMinutes = minutes
            } else {
                validator.add("window", "must be a whole number of minutes from 1 to 1440 (visitors are followed within a day)")
            }
        }
        if let text = parameters["windowDays"] {
            if let days = Int(text), (1...30).contains(days) { query.windowDays = days } else { validator.add("windowDays", "must be from 1 to 30") }
        }
        if let text = parameters["model"] {
            if text == "all" || models.contains(text) {
                query.model = text
            } else {
                validator.add("model", "must be all, \(models.joined(separator: ", "))")
            }
        }
        if let text = parameters["halfLifeDays"] {
            if let days = Double(text), days.isFinite, days >= 0.1, days <= 30 {
                query.halfLifeDays = days
            } else {
                validator.add("halfLifeDays", "must be a number of days from 0.1 to 30")
            }
        }
        try validator.check()
        return query
    }

    var days: ClosedRange<Int> { fromDay...toDay }

    /// The parameters in the form `parse` reads, for storing with an export or a scheduled report.
    var parameters: [String: String] {
        var result = ["from": LocalTime.isoDate(dayKey: fromDay), "to": LocalTime.isoDate(dayKey: toDay), "interval": interval.rawValue]
        if let notificationId { result["notificationId"] = notificationId.lowercased }
        if let variantId { result["variantId"] = variantId.lowercased }
        result["steps"] = steps.joined(separator: ",")
        result["window"] = String(windowMinutes)
        result["windowDays"] = String(windowDays)
        result["model"] = model
        result["halfLifeDays"] = String(halfLifeDays)
        return result
    }
}

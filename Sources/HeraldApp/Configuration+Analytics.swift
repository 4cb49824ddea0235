import AnalyticsService

extension HeraldConfiguration {
    /// Reads the HERALD_ANALYTICS_* settings into `analyticsOptions`.
    static func readAnalytics(_ environment: [String: String], into options: inout AnalyticsService.Options) throws {
        func number(_ name: String, _ range: ClosedRange<Int>, _ meaning: String, default value: Int) throws -> Int {
            guard let text = environment[name], !text.isEmpty else { return value }
            guard let number = Int(text), range.contains(number) else {
                throw ConfigurationError("\(name) must be \(meaning) from \(range.lowerBound) to \(range.upperBound) (default \(value))")
            }
            return number
        }
        options.queriesPerMinute = try number(
            "HERALD_ANALYTICS_QUERIES_PER_MINUTE", 1...100_000, "a number of reports per site and minute", default: options.queriesPerMinute
        )
        options.retention.minuteDays = try number(
            "HERALD_ANALYTICS_MINUTE_ROLLUP_DAYS", 1...366, "a number of days", default: options.retention.minuteDays
        )
        options.retention.hourDays = try number(
            "HERALD_ANALYTICS_HOUR_ROLLUP_DAYS", 1...3660, "a number of days", default: options.retention.hourDays
        )
        options.retention.rawDays = try number("HERALD_ANALYTICS_RAW_DAYS", 1...3660, "a number of days", default: options.retention.rawDays)
        if options.retention.hourDays < options.retention.minuteDays {
            throw ConfigurationError("HERALD_ANALYTICS_HOUR_ROLLUP_DAYS must not be shorter than HERALD_ANALYTICS_MINUTE_ROLLUP_DAYS")
        }
    }
}

import AnalyticsService
import Foundation
import HeraldObjectStore

extension HeraldConfiguration {
    /// Reads the HERALD_ANALYTICS_* settings into `analyticsOptions`.
    static func readAnalytics(_ environment: [String: String], into options: inout AnalyticsService.Options) throws {
        func number(_ name: String, _ range: ClosedRange<Int>, _ meaning: String, default value: Int) throws -> Int {
            try HeraldConfiguration.number(environment, name, range, meaning, default: value)
        }
        options.queriesPerMinute = try number(
            "HERALD_ANALYTICS_QUERIES_PER_MINUTE", 1...1000, "a number of reports per site and minute (counted per instance)",
            default: options.queriesPerMinute
        )
        options.retention.minuteDays = try number(
            "HERALD_ANALYTICS_MINUTE_ROLLUP_DAYS", 1...366, "a number of days", default: options.retention.minuteDays
        )
        options.retention.hourDays = try number(
            "HERALD_ANALYTICS_HOUR_ROLLUP_DAYS", 1...3660, "a number of days", default: options.retention.hourDays
        )
        options.retention.rawDays = try number("HERALD_ANALYTICS_RAW_DAYS", 1...3660, "a number of days", default: options.retention.rawDays)
        if let url = environment["HERALD_ANALYTICS_ARCHIVE_URL"], !url.isEmpty {
            do {
                options.archive = try ObjectStoreConfiguration.parse(url, environment: environment)
            } catch {
                throw ConfigurationError("HERALD_ANALYTICS_ARCHIVE_URL: \(error)")
            }
        }
        if let text = environment["HERALD_ANALYTICS_MAINTENANCE_INTERVAL"], !text.isEmpty {
            guard let seconds = Double(text), seconds >= 1, seconds <= 86_400 else {
                throw ConfigurationError("HERALD_ANALYTICS_MAINTENANCE_INTERVAL must be a number of seconds from 1 to 86400 (default 3600)")
            }
            options.maintenanceInterval = seconds
        }
        if let schedule = environment["HERALD_MAIL_RETRY_SCHEDULE"], !schedule.isEmpty {
            let delays = schedule.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !delays.isEmpty, delays.count <= 20, delays.allSatisfy({ ($0 ?? -1) >= 0 }) else {
                throw ConfigurationError("HERALD_MAIL_RETRY_SCHEDULE must be comma-separated seconds, such as 60,300,1800,7200")
            }
            options.mailRetryDelays = delays.compactMap { $0 }
        }
        if let url = environment["HERALD_CLICKHOUSE_URL"], !url.isEmpty {
            do {
                options.clickHouse = try ClickHouseConfiguration.parse(
                    url: url, database: environment["HERALD_CLICKHOUSE_DATABASE"], flushInterval: environment["HERALD_CLICKHOUSE_FLUSH_INTERVAL"]
                )
            } catch {
                // The message names the setting and never repeats the URL (it may hold a password).
                throw ConfigurationError("\(error)")
            }
        }
        if options.retention.hourDays < options.retention.minuteDays {
            throw ConfigurationError("HERALD_ANALYTICS_HOUR_ROLLUP_DAYS must not be shorter than HERALD_ANALYTICS_MINUTE_ROLLUP_DAYS")
        }
    }
}

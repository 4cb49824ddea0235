import Foundation
import HeraldCore
import Testing

@testable import AnalyticsService

@Suite("Scheduled report times (site time zones, clock changes)")
struct ReportScheduleTests {
    static func date(_ text: String) throws -> Date { try #require(ISO8601.date(from: text)) }

    static func local(_ date: Date, _ zone: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: zone)
        formatter.dateFormat = "yyyy-MM-dd HH:mm EEE"
        return formatter.string(from: date)
    }

    @Test func weeklyRunsOnTheWeekdayAtTheLocalHour() throws {
        let schedule = ReportSchedule(frequency: .weekly, hour: 8, weekday: 1, monthDay: 1)
        let clock = SiteClock.named("America/Chicago")
        // Friday 2026-12-04 20:00 UTC: the next Monday 08:00 in Chicago.
        let next = schedule.nextRun(after: try Self.date("2026-12-04T20:00:00Z"), clock: clock)
        #expect(Self.local(next, "America/Chicago") == "2026-12-07 08:00 Mon")
        // Exactly at a run time: the following week.
        #expect(Self.local(schedule.nextRun(after: next, clock: clock), "America/Chicago") == "2026-12-14 08:00 Mon")
        let period = schedule.period(forRunAt: next, clock: clock)
        #expect(LocalTime.isoDate(dayKey: period.from) == "2026-11-30" && LocalTime.isoDate(dayKey: period.to) == "2026-12-06")
    }

    @Test func dailyAndMonthlyPeriods() throws {
        let clock = SiteClock.named("Asia/Tokyo")
        let daily = ReportSchedule(frequency: .daily, hour: 0, weekday: 1, monthDay: 1)
        let run = daily.nextRun(after: try Self.date("2026-03-01T14:59:00Z"), clock: clock)
        #expect(Self.local(run, "Asia/Tokyo") == "2026-03-02 00:00 Mon")
        let day = daily.period(forRunAt: run, clock: clock)
        #expect(day.from == 20_260_301 && day.to == 20_260_301)
        let monthly = ReportSchedule(frequency: .monthly, hour: 6, weekday: 1, monthDay: 1)
        let first = monthly.nextRun(after: try Self.date("2026-02-10T00:00:00Z"), clock: clock)
        #expect(Self.local(first, "Asia/Tokyo") == "2026-03-01 06:00 Sun")
        let month = monthly.period(forRunAt: first, clock: clock)
        #expect(month.from == 20_260_201 && month.to == 20_260_228)
        let january = monthly.period(forRunAt: try Self.date("2026-01-01T00:00:00Z"), clock: clock)
        #expect(january.from == 20_251_201 && january.to == 20_251_231)
    }

    @Test(arguments: [("America/Chicago", "2026-03-08"), ("Europe/Berlin", "2026-03-29")])
    func aSkippedHourRunsTheHourAfter(zone: String, day: String) throws {
        let clock = SiteClock.named(zone)
        let dayKey = try #require(LocalTime.dayKey(isoDate: day))
        let days = try #require(LocalTime.days(dayKey: dayKey))
        let instant = Date(timeIntervalSince1970: Double(clock.instant(days: days, hour: 2)))
        #expect(Self.local(instant, zone).hasPrefix("\(day) 03:00"))
        let ordinary = Date(timeIntervalSince1970: Double(clock.instant(days: days, hour: 8)))
        #expect(Self.local(ordinary, zone).hasPrefix("\(day) 08:00"))
    }

    @Test(arguments: [("America/Chicago", "2026-11-01", "2026-11-01T06:30:00Z"), ("Europe/Berlin", "2026-10-25", "2026-10-25T00:30:00Z")])
    func aRepeatedHourRunsAtItsFirstOccurrence(zone: String, day: String, expected: String) throws {
        let clock = SiteClock.named(zone)
        let dayKey = try #require(LocalTime.dayKey(isoDate: day))
        let days = try #require(LocalTime.days(dayKey: dayKey))
        // 01:30 in Chicago and 02:30 in Berlin happen twice on these days.
        let hour = zone == "America/Chicago" ? 1 : 2
        let instant = clock.instant(days: days, hour: hour) + 1800
        #expect(instant == Int64(try Self.date(expected).timeIntervalSince1970))
    }
}

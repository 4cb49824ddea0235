import Foundation
import HeraldCore

/// When a scheduled report runs, and which days each run covers, in the site's time zone.
struct ReportSchedule: Sendable, Equatable {
    enum Frequency: String, Sendable, CaseIterable {
        case daily, weekly, monthly
    }

    var frequency: Frequency
    /// The local hour (0–23) the report is sent at.
    var hour: Int
    /// Weekly: the ISO weekday, 1 (Monday) to 7 (Sunday).
    var weekday: Int
    /// Monthly: the day of the month, 1 to 28 (every month has it).
    var monthDay: Int

    /// The first run strictly after `after`.
    func nextRun(after: Date, clock: SiteClock) -> Date {
        let start = clock.dayKey(atMillis: after.unixMilliseconds)
        guard let first = LocalTime.days(dayKey: start) else { return after.addingTimeInterval(86_400) }
        for days in first...(first + 400) {
            let civil = LocalTime.civil(days: days)
            let matches =
                switch frequency {
                case .daily: true
                case .weekly: Self.isoWeekday(days: days) == weekday
                case .monthly: civil.day == monthDay
                }
            guard matches else { continue }
            let run = Date(timeIntervalSince1970: Double(clock.instant(days: days, hour: hour)))
            if run > after { return run }
        }
        return after.addingTimeInterval(86_400)
    }

    /// The days a run at `run` reports on: the day before (daily), the seven days before (weekly), or the previous
    /// calendar month (monthly), all ending before the run's own day.
    func period(forRunAt run: Date, clock: SiteClock) -> (from: Int, to: Int) {
        let runDay = LocalTime.days(dayKey: clock.dayKey(atMillis: run.unixMilliseconds)) ?? 0
        switch frequency {
        case .daily:
            return (LocalTime.dayKey(days: runDay - 1), LocalTime.dayKey(days: runDay - 1))
        case .weekly:
            return (LocalTime.dayKey(days: runDay - 7), LocalTime.dayKey(days: runDay - 1))
        case .monthly:
            let civil = LocalTime.civil(days: runDay)
            let firstOfThisMonth = LocalTime.days(year: civil.year, month: civil.month, day: 1)
            let previous = LocalTime.civil(days: firstOfThisMonth - 1)
            let firstOfPrevious = LocalTime.days(year: previous.year, month: previous.month, day: 1)
            return (LocalTime.dayKey(days: firstOfPrevious), LocalTime.dayKey(days: firstOfThisMonth - 1))
        }
    }

    /// 1 (Monday) to 7 (Sunday) for days since 1970 (a Thursday).
    static func isoWeekday(days: Int) -> Int { ((days + 3) % 7 + 7) % 7 + 1 }
}

extension SiteClock {
    /// The Unix second of a local day's hour (`days` since 1970). An hour a clock change skips is taken as the hour
    /// after it (02:30 on a spring-forward day is 03:30); an hour that happens twice is its first occurrence.
    func instant(days: Int, hour: Int) -> Int64 {
        let local = Int64(days) * 86_400 + Int64(hour) * 3600
        // The offsets in force a day before and a day after: at most one change lies between them.
        let before = local - Int64(offset(atMillis: (local - 86_400) * 1000))
        let after = local - Int64(offset(atMillis: (local + 86_400) * 1000))
        func reads(_ instant: Int64) -> Bool { instant + Int64(offset(atMillis: instant * 1000)) == local }
        switch (reads(before), reads(after)) {
        case (true, true): return min(before, after)
        case (true, false): return before
        case (false, true): return after
        case (false, false): return max(before, after)
        }
    }
}

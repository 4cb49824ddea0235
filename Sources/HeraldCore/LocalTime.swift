import Foundation
import Synchronization

/// Calendar arithmetic for site-local days and hours, without `Calendar` (which is far too slow to run for
/// every beacon). Days are written as `yyyymmdd` integers (`20261204`), which sort and compare as dates.
public enum LocalTime {
    /// Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm).
    public static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The civil date of a day number (days since 1970-01-01).
    public static func civil(days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// `yyyymmdd` of a day number.
    public static func dayKey(days: Int) -> Int {
        let (y, m, d) = civil(days: days)
        return y * 10_000 + m * 100 + d
    }

    /// The day number of a `yyyymmdd` key, or nil when it is not a real date.
    public static func days(dayKey: Int) -> Int? {
        let (y, m, d) = (dayKey / 10_000, dayKey / 100 % 100, dayKey % 100)
        guard (1...12).contains(m), (1...31).contains(d) else { return nil }
        let days = days(year: y, month: m, day: d)
        return civil(days: days) == (y, m, d) ? days : nil
    }

    /// `yyyymmdd` written `yyyy-mm-dd`.
    public static func isoDate(dayKey: Int) -> String {
        let (y, m, d) = (dayKey / 10_000, dayKey / 100 % 100, dayKey % 100)
        return String(format: "%04d-%02d-%02d", y, m, d)
    }

    /// Parses `yyyy-mm-dd` into a `yyyymmdd` key, or nil.
    public static func dayKey(isoDate text: String) -> Int? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.utf8.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }),
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), y >= 1970
        else { return nil }
        let key = y * 10_000 + m * 100 + d
        return days(dayKey: key) == nil ? nil : key
    }

    /// The Monday (`yyyymmdd`) of the week a day belongs to (ISO weeks start on Monday).
    public static func weekKey(dayKey: Int) -> Int {
        guard let days = days(dayKey: dayKey) else { return dayKey }
        // 1970-01-01 was a Thursday: (days + 3) mod 7 is 0 on Mondays.
        let weekday = ((days + 3) % 7 + 7) % 7
        return self.dayKey(days: days - weekday)
    }
}

/// A site's time zone with a cache of its UTC offsets per hour, so local days and hours cost a lookup.
public final class SiteClock: Sendable {
    public let timeZone: TimeZone
    private let offsets = Mutex<[Int64: Int]>([:])

    public init(timeZone: TimeZone) {
        self.timeZone = timeZone
    }

    /// The offset from UTC, in seconds, at a moment (milliseconds since 1970).
    public func offset(atMillis millis: Int64) -> Int {
        let hour = millis >= 0 ? millis / 3_600_000 : (millis - 3_599_999) / 3_600_000
        if let cached = offsets.withLock({ $0[hour] }) { return cached }
        let offset = timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(hour) * 3600))
        offsets.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[hour] = offset
        }
        return offset
    }

    /// The local day (`yyyymmdd`) of a moment.
    public func dayKey(atMillis millis: Int64) -> Int {
        let local = millis / 1000 + Int64(offset(atMillis: millis))
        return LocalTime.dayKey(days: Int(local >= 0 ? local / 86_400 : (local - 86_399) / 86_400))
    }

    /// The start of the local hour a moment falls in, as Unix seconds. In zones offset by half or three quarters
    /// of an hour this is not a whole UTC hour.
    public func hourStart(atMillis millis: Int64) -> Int64 {
        let offset = Int64(self.offset(atMillis: millis))
        let local = millis / 1000 + offset
        let floored = local >= 0 ? local / 3600 * 3600 : (local - 3599) / 3600 * 3600
        return floored - offset
    }

    /// The Unix second at which a local day starts.
    public func startOfDay(dayKey: Int) -> Int64 {
        let days = Int64(LocalTime.days(dayKey: dayKey) ?? 0)
        let naive = days * 86_400
        // The offset at local midnight: try the offset at the naive instant, then correct once (DST changes).
        var offset = Int64(self.offset(atMillis: (naive) * 1000))
        let corrected = Int64(self.offset(atMillis: (naive - offset) * 1000))
        if corrected != offset { offset = corrected }
        return naive - offset
    }

    /// Shared clocks per time-zone identifier; unknown identifiers fall back to UTC.
    public static func named(_ identifier: String) -> SiteClock {
        if let clock = registry.withLock({ $0[identifier] }) { return clock }
        let clock = SiteClock(timeZone: TimeZone(identifier: identifier) ?? .gmt)
        registry.withLock { registry in
            if registry.count > 1000 { registry.removeAll() }
            registry[identifier] = clock
        }
        return clock
    }

    private static let registry = Mutex<[String: SiteClock]>([:])
}

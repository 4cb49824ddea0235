import Foundation

extension JSONEncoder {
    /// The encoder used for stored JSON documents: stable key order, ISO 8601 dates.
    public static var herald: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(ISO8601.string(from: date))
        }
        return encoder
    }
}

extension JSONDecoder {
    /// The decoder matching ``JSONEncoder/herald``.
    public static var herald: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = ISO8601.date(from: text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected an ISO 8601 date-time")
            }
            return date
        }
        return decoder
    }
}

/// ISO 8601 formatting with millisecond precision, thread-safe.
public enum ISO8601 {
    private static let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let withoutFraction = Date.ISO8601FormatStyle()

    /// `2026-11-29T04:31:55.123Z`
    public static func string(from date: Date) -> String {
        // Round to the millisecond first: the formatter truncates, which turns .007 stored as .00699… into .006.
        withFraction.format(Date(timeIntervalSince1970: (date.clampedToStorableRange.timeIntervalSince1970 * 1000).rounded() / 1000))
    }

    /// Parses an RFC 3339 date-time with or without fractional seconds.
    public static func date(from text: String) -> Date? {
        let text = text.uppercased()  // RFC 3339 allows "t" and "z"
        // The formatter rolls impossible fields over (12:99 becomes 13:39); refuse them first.
        guard hasValidFields(Array(text.utf8)) else { return nil }
        return (try? withFraction.parse(text)) ?? (try? withoutFraction.parse(text))
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with every field in its range (the day within its month).
    static func hasValidFields(_ b: [UInt8]) -> Bool {
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= b.count else { return nil }
            var value = 0
            for index in range {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[index]) else { return nil }
                value = value * 10 + Int(b[index] - UInt8(ascii: "0"))
            }
            return value
        }
        guard b.count >= 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"), b[13] == UInt8(ascii: ":"),
            b[16] == UInt8(ascii: ":"), let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), day >= 1, hour <= 23, minute <= 59, second <= 59
        else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard day <= monthDays[month - 1] else { return false }
        var index = 19
        if index < b.count, b[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < b.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[index]) { index += 1 }
            guard index > start else { return false }
        }
        guard index < b.count else { return false }
        if b[index] == UInt8(ascii: "Z") { return index + 1 == b.count }
        guard b[index] == UInt8(ascii: "+") || b[index] == UInt8(ascii: "-"), index + 6 == b.count, b[index + 3] == UInt8(ascii: ":"),
            let offsetHours = number((index + 1)..<(index + 3)), let offsetMinutes = number((index + 4)..<(index + 6))
        else { return false }
        return offsetHours <= 23 && offsetMinutes <= 59
    }
}

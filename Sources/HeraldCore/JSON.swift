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
        return (try? withFraction.parse(text)) ?? (try? withoutFraction.parse(text))
    }
}

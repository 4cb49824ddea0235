import Foundation

extension UUID {
    /// A version 7 UUID: 48 bits of Unix milliseconds followed by random bits.
    ///
    /// Time-ordered identifiers keep B-tree inserts local in PostgreSQL and SQLite and make
    /// "newest first" an index scan, while staying unguessable enough for public URLs.
    public static func v7(at date: Date = Date()) -> UUID {
        // Two 64-bit draws rather than sixteen 8-bit ones: one system call each, on every request.
        var generator = SystemRandomNumberGenerator()
        let high = generator.next()
        let low = generator.next()
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<8 {
            bytes[index] = UInt8(truncatingIfNeeded: high >> (8 * UInt64(index)))
            bytes[8 + index] = UInt8(truncatingIfNeeded: low >> (8 * UInt64(index)))
        }
        let millis = UInt64(max(0, date.unixMilliseconds))
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - UInt64(index)))) }
        bytes[6] = (bytes[6] & 0x0F) | 0x70
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            )
        )
    }

    /// The lowercase textual form used everywhere Herald prints or stores an identifier. Written digit by digit:
    /// Foundation's `uuidString` goes through `snprintf`, which showed up in profiles of the beacon path.
    public var lowercased: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { buffer in
                var out = 0
                for index in 0..<16 {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        buffer[out] = UInt8(ascii: "-")
                        out += 1
                    }
                    let byte = bytes[index]
                    buffer[out] = Self.hexDigit(byte >> 4)
                    buffer[out + 1] = Self.hexDigit(byte & 0x0F)
                    out += 2
                }
                return out
            }
        }
    }

    @inline(__always)
    static func hexDigit(_ value: UInt8) -> UInt8 { value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10 }

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in either case, as `UUID(uuidString:)` does, without its
    /// `sscanf` (the slowest part of reading a beacon).
    public init?(text: String) {
        var text = text
        guard let uuid = text.withUTF8({ Self.parse($0) }) else { return nil }
        self.init(uuid: uuid)
    }

    public init?(text: Substring) {
        self.init(text: String(text))
    }

    static func parse(_ utf8: UnsafeBufferPointer<UInt8>) -> uuid_t? {
        guard utf8.count == 36 else { return nil }
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let parsed = withUnsafeMutableBytes(of: &bytes) { out -> Bool in
            var index = 0
            var position = 0
            while position < 36 {
                if position == 8 || position == 13 || position == 18 || position == 23 {
                    guard utf8[position] == UInt8(ascii: "-") else { return false }
                    position += 1
                    continue
                }
                guard let high = hexValue(utf8[position]), let low = hexValue(utf8[position + 1]) else { return false }
                out[index] = high << 4 | low
                index += 1
                position += 2
            }
            return true
        }
        return parsed ? bytes : nil
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

// Herald writes identifiers in lowercase everywhere (RFC 9562's canonical form). Synthesised `Encodable`
// conformances in modules that import HeraldCore pick these overloads over the generic ones, which would
// print Foundation's uppercase form.
extension KeyedEncodingContainer {
    public mutating func encode(_ value: UUID, forKey key: Key) throws {
        try encode(value.lowercased, forKey: key)
    }

    public mutating func encodeIfPresent(_ value: UUID?, forKey key: Key) throws {
        if let value { try encode(value.lowercased, forKey: key) }
    }
}

extension Date {
    /// Year 1 to year 9999: the range both stores and every integer conversion Herald makes can hold.
    public static let storableRange = Date(timeIntervalSince1970: -62_135_596_800)...Date(timeIntervalSince1970: 253_402_300_799)

    /// The date moved into ``storableRange``.
    public var clampedToStorableRange: Date { min(max(self, Self.storableRange.lowerBound), Self.storableRange.upperBound) }

    /// Milliseconds since 1970, as the widget uses them.
    public var unixMilliseconds: Int64 { Int64((clampedToStorableRange.timeIntervalSince1970 * 1000).rounded()) }

    /// Microseconds since 1970: the precision both stores keep, so a cursor names a stored time exactly.
    public var unixMicroseconds: Int64 { Int64((clampedToStorableRange.timeIntervalSince1970 * 1_000_000).rounded()) }
}

/// A page cursor for lists ordered by a time and an id: `<microseconds>_<uuid>`. Microseconds because that is the
/// precision the stores keep: a cursor rounded to the millisecond would name a time after rows it has not shown yet,
/// and the next page would repeat the last one.
public struct TimeCursor: Sendable, Equatable {
    public var date: Date
    public var id: UUID

    public init(date: Date, id: UUID) {
        self.date = date
        self.id = id
    }

    public var text: String { "\(date.unixMicroseconds)_\(id.lowercased)" }

    public init?(_ text: String) {
        let parts = text.split(separator: "_", maxSplits: 1)
        // Any microsecond of the last storable second is accepted (the documented bound is 253402300799999999).
        guard parts.count == 2, let micros = Int64(parts[0]),
            (0...Date.storableRange.upperBound.unixMicroseconds + 999_999).contains(micros),
            let id = UUID(text: String(parts[1]))
        else { return nil }
        self.date = Date(timeIntervalSince1970: Double(micros) / 1_000_000).clampedToStorableRange
        self.id = id
    }
}

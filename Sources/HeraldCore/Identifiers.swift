import Foundation

extension UUID {
    /// A version 7 UUID: 48 bits of Unix milliseconds followed by random bits.
    ///
    /// Time-ordered identifiers keep B-tree inserts local in PostgreSQL and SQLite and make
    /// "newest first" an index scan, while staying unguessable enough for public URLs.
    public static func v7(at date: Date = Date()) -> UUID {
        var bytes = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for index in 0..<16 { bytes[index] = UInt8.random(in: .min ... .max, using: &generator) }
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1000))
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

    /// The lowercase textual form used everywhere Herald prints or stores an identifier.
    public var lowercased: String { self.uuidString.lowercased() }
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

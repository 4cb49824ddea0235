import Foundation

/// Writes JSON text directly, for the few hot paths where `JSONEncoder` is too slow (every beacon, every
/// raw analytics row). Absent optional fields are left out, as `JSONEncoder` does.
///
/// ```swift
/// var json = JSONWriter()
/// json.beginObject(); json.field("id", id); json.field("count", 3); json.endObject()
/// ```
public struct JSONWriter: Sendable {
    public private(set) var text = ""
    /// Whether the next member of the current object or array needs a comma before it.
    private var needsComma = false

    public init(capacity: Int = 256) {
        text.reserveCapacity(capacity)
    }

    public mutating func beginObject() {
        separate()
        text.append("{")
        needsComma = false
    }

    public mutating func endObject() {
        text.append("}")
        needsComma = true
    }

    public mutating func beginArray() {
        separate()
        text.append("[")
        needsComma = false
    }

    public mutating func endArray() {
        text.append("]")
        needsComma = true
    }

    /// Writes a member name; the value follows.
    public mutating func key(_ name: String) {
        separate()
        appendString(name)
        text.append(":")
        needsComma = false
    }

    public mutating func field(_ name: String, _ value: String?) {
        guard let value else { return }
        key(name)
        appendString(value)
        needsComma = true
    }

    public mutating func field(_ name: String, _ value: UUID?) {
        guard let value else { return }
        key(name)
        text.append("\"")
        text.append(value.lowercased)
        text.append("\"")
        needsComma = true
    }

    public mutating func field(_ name: String, _ value: Int64?) {
        guard let value else { return }
        key(name)
        text.append(String(value))
        needsComma = true
    }

    public mutating func field(_ name: String, _ value: Double?) {
        // JSON has no NaN or infinity; callers validate, and such a value is left out rather than written invalid.
        guard let value, value.isFinite else { return }
        key(name)
        if value.rounded() == value, abs(value) < 1e15 { text.append(String(Int64(value))) } else { text.append(String(value)) }
        needsComma = true
    }

    public mutating func field(_ name: String, _ value: Bool?) {
        guard let value else { return }
        key(name)
        text.append(value ? "true" : "false")
        needsComma = true
    }

    private mutating func separate() {
        if needsComma { text.append(",") }
    }

    private mutating func appendString(_ value: String) {
        text.append("\"")
        var plain = true
        for byte in value.utf8 where byte < 0x20 || byte == 0x22 || byte == 0x5C {
            plain = false
            break
        }
        if plain {
            text.append(value)
        } else {
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": text.append("\\\"")
                case "\\": text.append("\\\\")
                case "\n": text.append("\\n")
                case "\r": text.append("\\r")
                case "\t": text.append("\\t")
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    text.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                default: text.unicodeScalars.append(scalar)
                }
            }
        }
        text.append("\"")
    }
}

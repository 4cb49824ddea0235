import Foundation

/// Writes RFC 4180 CSV: CRLF after every record, fields quoted when they hold a comma, quote, CR or LF, quotes doubled.
///
/// Rows are appended one at a time and the bytes written so far can be taken at any point, so a large export is sent
/// in chunks without holding the whole file:
///
/// ```swift
/// var csv = CSVWriter(byteOrderMark: true)
/// csv.appendRow(["Page", "Views"])
/// for row in rows { csv.appendRow(row); if csv.pendingByteCount > 64 * 1024 { send(csv.takeBytes()) } }
/// send(csv.takeBytes())
/// ```
///
/// Cells are protected against CSV (formula) injection by default: a cell that starts with `=`, `+`, `-`, `@`, a tab
/// or a carriage return gets a leading `'` so spreadsheets show it as text instead of evaluating it. Plain numbers
/// such as `-12.5` or `+3` are left alone.
public struct CSVWriter: Sendable {
    /// Whether cells that a spreadsheet would read as formulas are prefixed with `'`.
    public let protectsAgainstFormulas: Bool
    private var buffer: [UInt8] = []

    /// - Parameters:
    ///   - byteOrderMark: start the output with a UTF-8 byte order mark, which Excel needs to read UTF-8 correctly.
    ///   - protectsAgainstFormulas: neutralise cells that would be evaluated as formulas (on unless the consumer is
    ///     known not to be a spreadsheet).
    public init(byteOrderMark: Bool = false, protectsAgainstFormulas: Bool = true) {
        self.protectsAgainstFormulas = protectsAgainstFormulas
        if byteOrderMark { buffer = [0xEF, 0xBB, 0xBF] }
    }

    /// Appends one record.
    public mutating func appendRow(_ fields: [String]) {
        for (index, field) in fields.enumerated() {
            if index > 0 { buffer.append(UInt8(ascii: ",")) }
            Self.appendField(field, protectingFormulas: protectsAgainstFormulas, to: &buffer)
        }
        buffer.append(0x0D)
        buffer.append(0x0A)
    }

    /// Appends several records.
    public mutating func appendRows(_ rows: [[String]]) {
        for row in rows { appendRow(row) }
    }

    /// How many bytes have been written since the last `takeBytes()` / `takeData()`.
    public var pendingByteCount: Int { buffer.count }

    /// The bytes written since the last take, leaving the writer empty and ready for more rows.
    public mutating func takeBytes() -> [UInt8] {
        defer { buffer = [] }
        return buffer
    }

    /// The bytes written since the last take as `Data`, leaving the writer empty and ready for more rows.
    public mutating func takeData() -> Data {
        Data(takeBytes())
    }

    /// A whole CSV document in one call.
    public static func encode(rows: [[String]], byteOrderMark: Bool = false, protectsAgainstFormulas: Bool = true) -> [UInt8] {
        var writer = CSVWriter(byteOrderMark: byteOrderMark, protectsAgainstFormulas: protectsAgainstFormulas)
        writer.appendRows(rows)
        return writer.takeBytes()
    }

    /// One field as it appears in the file: protected, then quoted if it needs to be.
    static func encodeField(_ field: String, protectingFormulas: Bool = true) -> String {
        var bytes: [UInt8] = []
        appendField(field, protectingFormulas: protectingFormulas, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func appendField(_ field: String, protectingFormulas: Bool, to buffer: inout [UInt8]) {
        let utf8 = field.utf8
        let prefix = protectingFormulas && needsFormulaProtection(field)
        let quoted = utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0D || $0 == 0x0A }
        if quoted { buffer.append(UInt8(ascii: "\"")) }
        if prefix { buffer.append(UInt8(ascii: "'")) }
        for byte in utf8 {
            buffer.append(byte)
            if byte == UInt8(ascii: "\"") { buffer.append(byte) }
        }
        if quoted { buffer.append(UInt8(ascii: "\"")) }
    }

    /// Whether a spreadsheet could evaluate the cell: it starts with a formula trigger and is not just a number.
    static func needsFormulaProtection(_ field: String) -> Bool {
        guard let first = field.utf8.first else { return false }
        switch first {
        case UInt8(ascii: "="), UInt8(ascii: "@"), 0x09, 0x0D: return true
        case UInt8(ascii: "+"), UInt8(ascii: "-"): return !isPlainNumber(field.utf8)
        default: return false
        }
    }

    /// A signed decimal such as `-12`, `+3.5`, `-.25` or `-4%`: something a spreadsheet reads as a value, never a formula.
    static func isPlainNumber(_ utf8: String.UTF8View) -> Bool {
        var digits = 0
        var sawPoint = false
        var sawPercent = false
        for (index, byte) in utf8.enumerated() {
            switch byte {
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                if index != 0 { return false }
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if sawPercent { return false }
                digits += 1
            case UInt8(ascii: "."):
                if sawPoint || sawPercent { return false }
                sawPoint = true
            case UInt8(ascii: "%"):
                if sawPercent || digits == 0 { return false }
                sawPercent = true
            default:
                return false
            }
        }
        return digits > 0
    }
}

import Foundation

/// Serialises pages into a PDF 1.4 file: catalog, page tree, the two standard fonts, `/Info`, one page object and one
/// uncompressed content stream per page, a cross-reference table with exact byte offsets, and the trailer.
struct PDFWriter {
    private var output: [UInt8] = []
    private var offsets: [Int] = []

    /// Writes a complete document.
    static func document(pages: [PDFCanvas], pageSize: PDFPageSize, title: String, creationDate: Date) -> [UInt8] {
        var writer = PDFWriter()
        writer.write("%PDF-1.4\n")
        // A comment with high bytes so transfer tools treat the file as binary.
        writer.write([0x25, 0xE2, 0xE3, 0xCF, 0xD3, 0x0A])

        let catalog = 1, pageTree = 2, info = 3
        let fonts = StandardFont.allCases.enumerated().map { (font: $0.element, object: 4 + $0.offset) }
        let firstPage = 4 + fonts.count
        let pageObjects = pages.indices.map { firstPage + 2 * $0 }

        writer.object(catalog, "<< /Type /Catalog /Pages \(pageTree) 0 R >>")
        let kids = pageObjects.map { "\($0) 0 R" }.joined(separator: " ")
        writer.object(pageTree, "<< /Type /Pages /Kids [\(kids)] /Count \(pages.count) >>")
        writer.object(
            info,
            "<< /Title \(textString(title)) /Producer (Herald) /Creator (Herald) /CreationDate \(textString(dateString(creationDate))) >>"
        )
        for (font, object) in fonts {
            writer.object(object, "<< /Type /Font /Subtype /Type1 /BaseFont /\(font.baseFont) /Encoding /WinAnsiEncoding >>")
        }
        let fontResources = fonts.map { "/\($0.font.resourceName) \($0.object) 0 R" }.joined(separator: " ")
        let mediaBox = "[0 0 \(PDFNumber.format(pageSize.width)) \(PDFNumber.format(pageSize.height))]"
        for (index, page) in pages.enumerated() {
            let pageObject = pageObjects[index]
            writer.object(
                pageObject,
                "<< /Type /Page /Parent \(pageTree) 0 R /MediaBox \(mediaBox) "
                    + "/Resources << /Font << \(fontResources) >> /ProcSet [/PDF /Text] >> /Contents \(pageObject + 1) 0 R >>"
            )
            writer.stream(pageObject + 1, data: page.bytes)
        }
        return writer.finish(root: catalog, info: info)
    }

    private mutating func write(_ text: String) {
        output.append(contentsOf: text.utf8)
    }

    private mutating func write(_ bytes: [UInt8]) {
        output.append(contentsOf: bytes)
    }

    private mutating func beginObject(_ number: Int) {
        // Objects are written in order 1, 2, 3…, so the offset table is indexed by number - 1.
        precondition(number == offsets.count + 1, "PDF objects must be written in order")
        offsets.append(output.count)
        write("\(number) 0 obj\n")
    }

    private mutating func object(_ number: Int, _ body: String) {
        beginObject(number)
        write(body)
        write("\nendobj\n")
    }

    private mutating func stream(_ number: Int, data: [UInt8]) {
        beginObject(number)
        write("<< /Length \(data.count) >>\nstream\n")
        write(data)
        write("\nendstream\nendobj\n")
    }

    private mutating func finish(root: Int, info: Int) -> [UInt8] {
        let xref = output.count
        write("xref\n0 \(offsets.count + 1)\n")
        // Each entry is exactly 20 bytes, its end-of-line being a space and a line feed.
        write("0000000000 65535 f \n")
        for offset in offsets {
            write(PDFNumber.zeroPadded(offset, width: 10) + " 00000 n \n")
        }
        write("trailer\n<< /Size \(offsets.count + 1) /Root \(root) 0 R /Info \(info) 0 R >>\n")
        write("startxref\n\(xref)\n%%EOF\n")
        return output
    }

    /// A PDF text string: a literal for printable ASCII, UTF-16BE with a byte order mark otherwise.
    static func textString(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: text.unicodeScalars.filter { $0.properties.generalCategory != .control })
        let cleaned = String(scalars)
        if cleaned.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) {
            return "(" + String(decoding: escapeLiteral(Array(cleaned.utf8)), as: UTF8.self) + ")"
        }
        var hex = "<FEFF"
        for unit in cleaned.utf16 { hex += PDFNumber.hex(unit) }
        return hex + ">"
    }

    /// Escapes the bytes of a literal string: backslash, parentheses, and line breaks that would otherwise be altered.
    static func escapeLiteral(_ bytes: [UInt8]) -> [UInt8] {
        var escaped: [UInt8] = []
        escaped.reserveCapacity(bytes.count + 4)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "\\"):
                escaped.append(UInt8(ascii: "\\"))
                escaped.append(byte)
            case 0x0D:
                escaped.append(contentsOf: Array("\\r".utf8))
            case 0x0A:
                escaped.append(contentsOf: Array("\\n".utf8))
            default:
                escaped.append(byte)
            }
        }
        return escaped
    }

    /// `D:YYYYMMDDHHmmSSZ` in UTC.
    static func dateString(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let fields = [
            (parts.year ?? 1970, 4), (parts.month ?? 1, 2), (parts.day ?? 1, 2),
            (parts.hour ?? 0, 2), (parts.minute ?? 0, 2), (parts.second ?? 0, 2),
        ]
        return "D:" + fields.map { PDFNumber.zeroPadded($0.0, width: $0.1) }.joined() + "Z"
    }
}

/// An RGB colour with components from 0 to 1.
struct PDFColor: Sendable, Equatable {
    var red: Double
    var green: Double
    var blue: Double

    init(_ red: Double, _ green: Double, _ blue: Double) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    init(gray: Double) {
        self.init(gray, gray, gray)
    }

    var operands: String {
        "\(PDFNumber.format(red)) \(PDFNumber.format(green)) \(PDFNumber.format(blue))"
    }

    static let text = PDFColor(0.12, 0.13, 0.16)
    static let muted = PDFColor(0.42, 0.45, 0.5)
    static let rule = PDFColor(0.78, 0.8, 0.83)
    static let grid = PDFColor(0.9, 0.91, 0.93)
    static let headerFill = PDFColor(0.91, 0.93, 0.96)
    static let stripe = PDFColor(0.97, 0.975, 0.985)
    static let accent = PDFColor(0.27, 0.36, 0.85)
}

/// The drawing operations of one page's content stream, in PDF coordinates (points, origin at the bottom left).
struct PDFCanvas {
    private(set) var bytes: [UInt8] = []

    private mutating func op(_ text: String) {
        bytes.append(contentsOf: text.utf8)
        bytes.append(0x0A)
    }

    /// Draws encoded text with its baseline starting at (`x`, `y`).
    mutating func text(_ encoded: [UInt8], x: Double, y: Double, font: StandardFont, size: Double, color: PDFColor = .text) {
        guard !encoded.isEmpty else { return }
        op("BT /\(font.resourceName) \(PDFNumber.format(size)) Tf \(color.operands) rg")
        op("\(PDFNumber.format(x)) \(PDFNumber.format(y)) Td")
        bytes.append(UInt8(ascii: "("))
        bytes.append(contentsOf: PDFWriter.escapeLiteral(encoded))
        op(") Tj ET")
    }

    mutating func fillRect(x: Double, y: Double, width: Double, height: Double, color: PDFColor) {
        op("\(color.operands) rg \(PDFNumber.format(x)) \(PDFNumber.format(y)) \(PDFNumber.format(width)) \(PDFNumber.format(height)) re f")
    }

    mutating func line(from start: (x: Double, y: Double), to end: (x: Double, y: Double), width: Double, color: PDFColor) {
        polyline([start, end], width: width, color: color)
    }

    mutating func polyline(_ points: [(x: Double, y: Double)], width: Double, color: PDFColor) {
        guard let first = points.first, points.count > 1 else { return }
        var path = "\(color.operands) RG \(PDFNumber.format(width)) w 1 J 1 j \(PDFNumber.format(first.x)) \(PDFNumber.format(first.y)) m"
        for point in points.dropFirst() { path += " \(PDFNumber.format(point.x)) \(PDFNumber.format(point.y)) l" }
        op(path + " S")
    }

    /// A filled circle from four Bézier arcs.
    mutating func fillCircle(x: Double, y: Double, radius: Double, color: PDFColor) {
        let k = radius * 0.5523
        let f = PDFNumber.format
        var path = "\(color.operands) rg \(f(x + radius)) \(f(y)) m"
        path += " \(f(x + radius)) \(f(y + k)) \(f(x + k)) \(f(y + radius)) \(f(x)) \(f(y + radius)) c"
        path += " \(f(x - k)) \(f(y + radius)) \(f(x - radius)) \(f(y + k)) \(f(x - radius)) \(f(y)) c"
        path += " \(f(x - radius)) \(f(y - k)) \(f(x - k)) \(f(y - radius)) \(f(x)) \(f(y - radius)) c"
        path += " \(f(x + k)) \(f(y - radius)) \(f(x + radius)) \(f(y - k)) \(f(x + radius)) \(f(y)) c f"
        op(path)
    }
}

/// Number formatting for PDF operands and labels, without locale or `String(format:)`.
enum PDFNumber {
    /// A coordinate with at most two decimals and no trailing zeros.
    static func format(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let hundredths = Int((min(max(value, -1e9), 1e9) * 100).rounded())
        let sign = hundredths < 0 ? "-" : ""
        let magnitude = abs(hundredths)
        let whole = magnitude / 100, fraction = magnitude % 100
        if fraction == 0 { return sign + String(whole) }
        if fraction % 10 == 0 { return "\(sign)\(whole).\(fraction / 10)" }
        return "\(sign)\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    static func zeroPadded(_ value: Int, width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    static func hex(_ unit: UInt16) -> String {
        let digits = String(unit, radix: 16, uppercase: true)
        return String(repeating: "0", count: 4 - digits.count) + digits
    }

    /// A value for people: thousands separated by commas, `decimals` digits after the point.
    static func grouped(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "–" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e15 else { return String(value) }
        let units = Int(scaled)
        let whole = units / Int(scale), fraction = units % Int(scale)
        var digits = Array(String(whole))
        var groupedDigits: [Character] = []
        while digits.count > 3 {
            groupedDigits.insert(contentsOf: [","] + digits.suffix(3), at: 0)
            digits.removeLast(3)
        }
        groupedDigits.insert(contentsOf: digits, at: 0)
        var text = (value < 0 && units != 0 ? "-" : "") + String(groupedDigits)
        if decimals > 0 { text += "." + zeroPadded(fraction, width: decimals) }
        return text
    }
}

import Foundation
import Testing

@testable import HeraldDocuments

@Suite("PDF structure")
struct PDFStructureTests {
    @Test func headerTrailerAndCrossReferenceOffsets() throws {
        let pdf = SampleReport.render()
        #expect(pdf.hasPrefix("%PDF-1.4\n", at: 0))
        #expect(pdf.text(pdf.count - 6..<pdf.count) == "%%EOF\n")

        let startxref = try #require(pdf.offsets(of: "startxref\n").last)
        let tail = pdf.text(startxref + 10..<pdf.count).split(separator: "\n")
        let xrefOffset = try #require(Int(tail[0]))
        #expect(pdf.hasPrefix("xref\n0 ", at: xrefOffset))

        // "xref\n0 N\n", then N entries of exactly 20 bytes.
        let subsectionEnd = try #require(pdf[(xrefOffset + 5)...].firstIndex(of: 0x0A))
        let count = try #require(Int(pdf.text(xrefOffset + 7..<subsectionEnd)))
        let entriesStart = subsectionEnd + 1
        #expect(pdf.text(entriesStart..<entriesStart + 20) == "0000000000 65535 f \n")
        for object in 1..<count {
            let entry = pdf.text(entriesStart + 20 * object..<entriesStart + 20 * (object + 1))
            #expect(entry.hasSuffix(" 00000 n \n"), "entry \(object): \(entry)")
            let offset = try #require(Int(entry.prefix(10)))
            #expect(pdf.hasPrefix("\(object) 0 obj\n", at: offset), "object \(object) is not at \(offset)")
        }
        #expect(pdf.hasPrefix("trailer\n<< /Size \(count) /Root 1 0 R /Info 3 0 R >>", at: entriesStart + 20 * count))
        #expect(pdf.offsets(of: " 0 obj\n").count == count - 1)
        #expect(pdf.offsets(of: "endobj\n").count == count - 1)
    }

    @Test func streamsAreBalancedWithExactLengths() throws {
        let pdf = SampleReport.render()
        let starts = pdf.offsets(of: ">>\nstream\n")
        let ends = pdf.offsets(of: "\nendstream\n")
        #expect(starts.count == ends.count)
        #expect(starts.count == pdf.offsets(of: "/Type /Page ").count)
        for (start, end) in zip(starts, ends) {
            let length = try #require(pdf.offsets(of: "/Length ").last { $0 < start })
            let declared = try #require(Int(pdf.text(length + 8..<start).trimmingCharacters(in: .whitespaces)))
            let dataStart = start + ">>\nstream\n".utf8.count
            #expect(end - dataStart == declared)
        }
    }

    @Test func fontsInfoAndPages() throws {
        let pdf = SampleReport.render()
        #expect(pdf.contains("/BaseFont /Helvetica /Encoding /WinAnsiEncoding"))
        #expect(pdf.contains("/BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding"))
        #expect(pdf.contains("/Producer (Herald)"))
        #expect(pdf.contains("/CreationDate (D:20250601080000Z)"))
        // A non-ASCII title is UTF-16BE with a byte order mark: "Caf" then é (00E9).
        #expect(pdf.contains("/Title <FEFF00430061006600E9"))
        #expect(pdf.contains("/MediaBox [0 0 595.28 841.89]"))

        let pages = pdf.offsets(of: "/Type /Page ").count
        #expect(pages >= 3)
        #expect(pdf.contains("/Count \(pages) >>"))
        for page in 1...pages { #expect(pdf.contains("(Page \(page) of \(pages))")) }
        // The table's header row is repeated on every page it continues on.
        #expect(pdf.offsets(of: "(Conversion)").count >= 2)

        let letter = SampleReport.render(pageSize: .usLetter)
        #expect(letter.contains("/MediaBox [0 0 612 792]"))
        let ascii = PDFReport(title: "Plain (title)").render(creationDate: SampleReport.creationDate)
        #expect(ascii.contains("/Title (Plain \\(title\\))"))
    }

    @Test func textIsEscapedAndEncoded() {
        let pdf = PDFReport(title: "T", sections: [.paragraph("a (b) \\ c é 😀")]).render()
        // Parentheses and backslashes escaped; é as the single cp1252 byte E9; the emoji as "?".
        let expected: [UInt8] = Array("(a \\(b\\) \\\\ c ".utf8) + [0xE9] + Array(" ?) Tj".utf8)
        #expect(!pdf.offsets(ofBytes: expected).isEmpty)
        #expect(!pdf.contains("c é"), "text must not be written as UTF-8")
    }

    @Test func chartDrawsBarsTicksAndThinsCrowdedLabels() {
        let days = (1...31).map { "May \($0)" }
        let chart = PDFChart(title: "Daily", labels: days, values: days.indices.map { Double($0 * 13 % 40) })
        let pdf = PDFReport(title: "Chart", sections: [.chart(chart)]).render()
        // One filled rectangle per bar.
        #expect(pdf.offsets(of: " re f\n").count >= 31)
        // Values 0–39: ticks at 0, 10, 20, 30, 40.
        for tick in ["(0)", "(10)", "(20)", "(30)", "(40)"] { #expect(pdf.contains(tick + " Tj"), "tick \(tick)") }
        #expect(pdf.contains("(May 1) Tj"))
        #expect(!pdf.contains("(May 2) Tj"))

        let week = PDFReport(title: "Week", sections: [.chart(PDFChart(labels: SampleReport.weekdays, values: [1, 2, 3, 4, 5, 6, 7]))]).render()
        for day in SampleReport.weekdays { #expect(week.contains("(\(day)) Tj")) }
    }

    @Test(arguments: [
        ([0.0, 410], 0.0, 500.0, 100.0),
        ([3.0], 0, 3, 1),
        ([-1.5, 6.6], -2, 8, 2),
        ([0.0, 0], 0, 1, 1),
        ([12_345.0], 0, 12_500, 2_500),
        ([0.42], 0, 0.5, 0.1),
    ])
    func axisScalesAreRounded(values: [Double], lower: Double, upper: Double, step: Double) {
        let scale = AxisScale(values: values)
        #expect(abs(scale.lower - lower) < 1e-9)
        #expect(abs(scale.upper - upper) < 1e-9)
        #expect(abs(scale.step - step) < 1e-9)
        #expect(scale.ticks.count >= 2)
    }

    @Test func columnsFillTheWidthAndNarrowColumnsKeepTheirs() {
        let narrow = ReportLayout.columnWidths(headers: [Array("A".utf8), Array("B".utf8)], rows: [], available: 400)
        #expect(abs(narrow.reduce(0, +) - 400) < 1e-6)
        let views = StandardFont.helveticaBold.width(of: Array("Views".utf8), size: 9) + 12
        let textFirst = ReportLayout.columnWidths(
            headers: [Array("Page".utf8), Array("Views".utf8)], rows: [], available: 400, stretchable: [true, false]
        )
        #expect(abs(textFirst[1] - views) < 1e-6)
        #expect(abs(textFirst.reduce(0, +) - 400) < 1e-6)
        let long = Array(String(repeating: "w", count: 300).utf8)
        let widths = ReportLayout.columnWidths(headers: [Array("Page".utf8), Array("Views".utf8)], rows: [[long, Array("12".utf8)]], available: 400)
        #expect(abs(widths.reduce(0, +) - 400) < 1e-6)
        #expect(abs(widths[1] - views) < 1e-6)
    }

    @Test func numericColumnsAreDetected() {
        let rows = [["/a", "1,234", "-5.5%", "12", ""], ["/b", "—", "$9.99", "n/a", ""]]
        let table = PDFTable(headers: ["Page", "Views", "Rate", "Mixed", "Empty"], rows: rows)
        #expect(table.columns.map(\.alignment) == [.left, .right, .right, .left, .left])
    }

    @Test func emptyReportIsOnePage() {
        let pdf = PDFReport(title: "").render()
        #expect(pdf.offsets(of: "/Type /Page ").count == 1)
        #expect(pdf.contains("(Page 1 of 1)"))
    }
}

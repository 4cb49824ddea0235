import Foundation
import HeraldCore
import HeraldDocuments

/// A report as a file: CSV for spreadsheets, PDF for people. Both come from the same ``RenderedReport`` tables,
/// so a number reads the same in the API, the CSV and the PDF.
enum ReportFile {
    enum Format: String, Sendable, CaseIterable {
        case csv, pdf

        var contentType: String {
            switch self {
            case .csv: "text/csv; charset=utf-8"
            case .pdf: "application/pdf"
            }
        }
    }

    static func render(_ report: RenderedReport, as format: Format, generatedAt: Date = Date()) -> [UInt8] {
        switch format {
        case .csv: csv(report)
        case .pdf: pdf(report, generatedAt: generatedAt)
        }
    }

    /// Each table under a one-cell title row, separated by an empty row.
    static func csv(_ report: RenderedReport) -> [UInt8] {
        var writer = CSVWriter(byteOrderMark: true)
        writer.appendRow([report.title, report.site.name, report.period])
        for table in report.tables {
            writer.appendRow([])
            writer.appendRow([table.title])
            writer.appendRow(table.columns)
            writer.appendRows(table.rows)
        }
        return writer.takeBytes()
    }

    /// Landscape A4: report tables have up to a dozen columns.
    static let pdfPage = PDFPageSize(width: PDFPageSize.a4.height, height: PDFPageSize.a4.width)

    static func pdf(_ report: RenderedReport, generatedAt: Date) -> [UInt8] {
        var sections: [PDFReport.Section] = []
        for table in report.tables {
            sections.append(.heading(table.title))
            // Series start times read as dates (or times of day for hourly series) in print.
            let rows = table.chart == nil ? table.rows : table.rows.map { row in [chartLabel(row.first ?? "")] + row.dropFirst() }
            if let column = table.chart, !rows.isEmpty {
                let points = rows.map { row in PDFChart.Point(row.first ?? "", chartValue(column < row.count ? row[column] : "")) }
                sections.append(.chart(PDFChart(style: .bar, points: points, valueAxisTitle: table.columns[column])))
            }
            if rows.isEmpty {
                sections.append(.paragraph("No data in this period."))
            } else if rows.count == 1, table.columns.count > 4 {
                // One row of many metrics reads better as a list of metric and value.
                sections.append(.table(PDFTable(headers: ["Metric", "Value"], rows: zip(table.columns, rows[0]).map { [$0, $1] })))
            } else {
                sections.append(.table(PDFTable(headers: table.columns, rows: rows)))
            }
        }
        let subtitle = [report.site.name, report.period, "Generated \(ISO8601.string(from: generatedAt)) by Herald"]
        return PDFReport(title: report.title, subtitle: subtitle, sections: sections).render(pageSize: pdfPage, creationDate: generatedAt)
    }

    /// A cell as a number to draw: `1,234`, `12.34%` (drawn as 12.34) or plain numbers; anything else is 0.
    static func chartValue(_ cell: String) -> Double {
        Double(cell.replacingOccurrences(of: ",", with: "").replacingOccurrences(of: "%", with: "").trimmingCharacters(in: .whitespaces)) ?? 0
    }

    /// Series labels are ISO date-times; a chart shows the date, or the time within a day for hourly series.
    static func chartLabel(_ text: String) -> String {
        guard text.count >= 16, text.dropFirst(4).first == "-" else { return text }
        let time = text.dropFirst(11).prefix(5)
        return time == "00:00" ? String(text.prefix(10)) : String(time)
    }

    /// A file name such as `shop-summary-2026-11-01-to-2026-11-30.pdf`.
    static func fileName(site: String, report: String, from: Int, to: Int, format: Format) -> String {
        let slug = site.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" }
        let name = String(slug).split(separator: "-").joined(separator: "-").prefix(40)
        return
            "\(name.isEmpty ? "site" : String(name))-\(report)-\(LocalTime.isoDate(dayKey: from))-to-\(LocalTime.isoDate(dayKey: to)).\(format.rawValue)"
    }
}

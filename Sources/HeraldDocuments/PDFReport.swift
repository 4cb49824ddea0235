import Foundation

/// A paper size in PostScript points (1/72 inch).
public struct PDFPageSize: Sendable, Hashable {
    /// Width in points.
    public var width: Double
    /// Height in points.
    public var height: Double

    /// A custom size, in points.
    public init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// ISO A4, 210 × 297 mm.
    public static let a4 = PDFPageSize(width: 595.28, height: 841.89)
    /// US Letter, 8.5 × 11 in.
    public static let usLetter = PDFPageSize(width: 612, height: 792)
}

/// A report as a document: a title, subtitle lines (site, period, when it was generated), then sections laid out
/// top to bottom with automatic page breaks and a "Page n of m" footer.
///
/// ```swift
/// let pdf = PDFReport(
///     title: "Visits",
///     subtitle: ["example.com", "1–31 May 2025"],
///     sections: [.heading("Top pages"), .table(PDFTable(headers: ["Page", "Views"], rows: rows))]
/// ).render(pageSize: .a4)
/// ```
///
/// Text is set in Helvetica with the WinAnsi (Windows-1252) encoding, so text extraction gives back exactly what was
/// written; characters outside that encoding are drawn as `?`.
public struct PDFReport: Sendable {
    /// One block of the report body.
    public enum Section: Sendable {
        /// A section heading, kept on the same page as the start of what follows it.
        case heading(String)
        /// Body text, wrapped to the page width; line breaks in the string start new lines.
        case paragraph(String)
        /// A table whose rows continue on following pages under a repeated header row.
        case table(PDFTable)
        /// A bar or line chart, never split across pages.
        case chart(PDFChart)
    }

    /// The document title: the heading of the first page, the footer of every page, and `/Title` in the PDF.
    public var title: String
    /// Lines under the title, such as the site, the period and when the report was generated.
    public var subtitle: [String]
    /// The body, in reading order.
    public var sections: [Section]

    /// A report; nothing is laid out until ``render(pageSize:creationDate:)``.
    public init(title: String, subtitle: [String] = [], sections: [Section] = []) {
        self.title = title
        self.subtitle = subtitle
        self.sections = sections
    }

    /// The report as the bytes of a PDF 1.4 file.
    /// - Parameter creationDate: recorded in the document information; pass a fixed date for reproducible output.
    public func render(pageSize: PDFPageSize = .a4, creationDate: Date = Date()) -> [UInt8] {
        var layout = ReportLayout(pageSize: pageSize)
        layout.addTitle(title, subtitle: subtitle)
        for (index, section) in sections.enumerated() {
            switch section {
            case .heading(let text): layout.addHeading(text, keepingWith: index + 1 < sections.count ? sections[index + 1] : nil)
            case .paragraph(let text): layout.addParagraph(text)
            case .table(let table): layout.addTable(table)
            case .chart(let chart): layout.addChart(chart)
            }
        }
        let pages = layout.finish(footer: title)
        return PDFWriter.document(pages: pages, pageSize: pageSize, title: title, creationDate: creationDate)
    }
}

/// A table of text cells under a header row.
public struct PDFTable: Sendable {
    /// How a column's cells sit in their width.
    public enum Alignment: Sendable {
        /// Text starts at the column's left edge.
        case left
        /// Text ends at the column's right edge, so digits line up.
        case right
    }

    /// A column's header and alignment.
    public struct Column: Sendable {
        /// The header cell.
        public var title: String
        /// Where the column's cells, header included, sit.
        public var alignment: Alignment

        /// A column titled `title`.
        public init(_ title: String, alignment: Alignment = .left) {
            self.title = title
            self.alignment = alignment
        }
    }

    /// The columns, left to right; their widths follow the text they hold.
    public var columns: [Column]
    /// Rows of cells, one per column; missing cells are blank and extra cells are ignored.
    public var rows: [[String]]

    /// A table with explicit column alignments.
    public init(columns: [Column], rows: [[String]]) {
        self.columns = columns
        self.rows = rows
    }

    /// A table whose numeric columns (every non-blank cell a number such as `1,234`, `-5.5`, `12%` or `$9.99`) are
    /// right-aligned and the others left-aligned.
    public init(headers: [String], rows: [[String]]) {
        let columns = headers.indices.map { index in
            let cells = rows.compactMap { index < $0.count ? $0[index] : nil }.filter { !Self.isBlank($0) }
            let numeric = !cells.isEmpty && cells.allSatisfy(Self.looksNumeric)
            return Column(headers[index], alignment: numeric ? .right : .left)
        }
        self.init(columns: columns, rows: rows)
    }

    private static func isBlank(_ cell: String) -> Bool {
        let trimmed = cell.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty || trimmed == "-" || trimmed == "–" || trimmed == "—"
    }

    static func looksNumeric(_ cell: String) -> Bool {
        var text = Substring(cell.trimmingCharacters(in: .whitespaces))
        if let first = text.first, "+-−".contains(first) { text = text.dropFirst() }
        if let first = text.first, "$€£¥".contains(first) { text = text.dropFirst() }
        if text.last == "%" { text = text.dropLast() }
        guard let first = text.first, first.isASCII, first.isNumber else { return false }
        return text.allSatisfy { ($0.isASCII && $0.isNumber) || $0 == "," || $0 == "." }
    }
}

/// A chart of labelled values over a value axis with rounded ticks.
public struct PDFChart: Sendable {
    /// How values are drawn.
    public enum Style: Sendable {
        /// A filled bar per value, from zero.
        case bar
        /// A line through the values with a marker at each.
        case line
    }

    /// One labelled value.
    public struct Point: Sendable {
        /// Shown under the bar or point; crowded labels are thinned out.
        public var label: String
        /// The value; non-finite values are drawn as zero.
        public var value: Double

        /// A value and its label.
        public init(_ label: String, _ value: Double) {
            self.label = label
            self.value = value
        }
    }

    /// Shown above the chart.
    public var title: String?
    /// Bars or a line.
    public var style: Style
    /// The values, left to right.
    public var points: [Point]
    /// Names the values (for example "Visits"), shown above the value axis.
    public var valueAxisTitle: String?
    /// Names the labels (for example "Day"), shown under them.
    public var labelAxisTitle: String?
    /// Height of the plotting area in points.
    public var plotHeight: Double

    /// A chart of `points`, the value axis running from zero (or the lowest negative value) to a rounded maximum.
    public init(
        title: String? = nil,
        style: Style = .bar,
        points: [Point],
        valueAxisTitle: String? = nil,
        labelAxisTitle: String? = nil,
        plotHeight: Double = 160
    ) {
        self.title = title
        self.style = style
        self.points = points
        self.valueAxisTitle = valueAxisTitle
        self.labelAxisTitle = labelAxisTitle
        self.plotHeight = plotHeight
    }

    /// A chart from parallel arrays of labels and values (extra elements of the longer one are ignored).
    public init(
        title: String? = nil,
        style: Style = .bar,
        labels: [String],
        values: [Double],
        valueAxisTitle: String? = nil,
        labelAxisTitle: String? = nil
    ) {
        self.init(
            title: title, style: style, points: zip(labels, values).map { Point($0, $1) },
            valueAxisTitle: valueAxisTitle, labelAxisTitle: labelAxisTitle
        )
    }
}

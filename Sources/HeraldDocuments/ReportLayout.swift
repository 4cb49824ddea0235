import Foundation

/// Lays a report out top to bottom onto pages: a cursor moves down the page and each block either fits below it or
/// starts a new page. Footers are drawn last, once the page count is known.
struct ReportLayout {
    let pageSize: PDFPageSize
    let left: Double
    let right: Double
    let contentTop: Double
    let contentBottom: Double
    private(set) var pages: [PDFCanvas] = [PDFCanvas()]
    /// The top of the free space on the current page.
    private(set) var cursor: Double

    private static let margin = 54.0
    private static let footerBaseline = 30.0

    init(pageSize: PDFPageSize) {
        self.pageSize = pageSize
        left = Self.margin
        right = pageSize.width - Self.margin
        contentTop = pageSize.height - Self.margin
        contentBottom = Self.margin
        cursor = contentTop
    }

    var contentWidth: Double { right - left }
    private var atPageTop: Bool { cursor >= contentTop - 0.01 }

    mutating func newPage() {
        pages.append(PDFCanvas())
        cursor = contentTop
    }

    /// Starts a new page unless `height` points fit below the cursor; a block taller than a page starts at a page top.
    mutating func ensure(_ height: Double) {
        if cursor - height < contentBottom && !atPageTop { newPage() }
    }

    mutating func draw(_ body: (inout PDFCanvas) -> Void) {
        body(&pages[pages.count - 1])
    }

    /// The baseline for text of `size` points whose line box starts at `top`.
    static func baseline(top: Double, size: Double, lineHeight: Double) -> Double {
        // Centre Helvetica's cap height (0.718 em) in the line box.
        top - lineHeight / 2 - size * 0.359
    }

    // MARK: Text blocks

    mutating func addTitle(_ title: String, subtitle: [String]) {
        let size = 20.0, lineHeight = 25.0
        for line in WinAnsi.encodeLines(title).flatMap({ Self.wrap($0, font: .helveticaBold, size: size, width: contentWidth) }) {
            addLine(line, font: .helveticaBold, size: size, lineHeight: lineHeight, color: .text)
        }
        cursor -= 3
        for text in subtitle {
            for line in WinAnsi.encodeLines(text).flatMap({ Self.wrap($0, font: .helvetica, size: 10, width: contentWidth) }) {
                addLine(line, font: .helvetica, size: 10, lineHeight: 14, color: .muted)
            }
        }
        cursor -= 8
        let y = cursor, start = left, end = right
        draw { $0.line(from: (start, y), to: (end, y), width: 0.75, color: .rule) }
        cursor -= 18
    }

    /// Adds a heading, moving it to a new page unless the start of `next` fits under it too.
    mutating func addHeading(_ text: String, keepingWith next: PDFReport.Section?) {
        let size = 13.0, lineHeight = 18.0, spaceBefore = 10.0
        let lines = WinAnsi.encodeLines(text).flatMap { Self.wrap($0, font: .helveticaBold, size: size, width: contentWidth) }
        let following = next.map(Self.minimumHeight) ?? 0
        ensure(spaceBefore + Double(lines.count) * lineHeight + 4 + following)
        if !atPageTop { cursor -= spaceBefore }
        for line in lines { addLine(line, font: .helveticaBold, size: size, lineHeight: lineHeight, color: .text) }
        cursor -= 4
    }

    mutating func addParagraph(_ text: String) {
        for line in WinAnsi.encodeLines(text).flatMap({ Self.wrap($0, font: .helvetica, size: 10, width: contentWidth) }) {
            addLine(line, font: .helvetica, size: 10, lineHeight: 14, color: .text)
        }
        cursor -= 8
    }

    /// The least of a section that must fit on a page before it starts there.
    static func minimumHeight(of section: PDFReport.Section) -> Double {
        switch section {
        case .heading: 32
        case .paragraph: 28
        case .table(let table): tableHeaderHeight + tableRowHeight * Double(min(max(table.rows.count, 1), 3))
        case .chart(let chart): ChartMetrics(chart).totalHeight
        }
    }

    private mutating func addLine(_ line: [UInt8], font: StandardFont, size: Double, lineHeight: Double, color: PDFColor) {
        ensure(lineHeight)
        let x = left, y = Self.baseline(top: cursor, size: size, lineHeight: lineHeight)
        draw { $0.text(line, x: x, y: y, font: font, size: size, color: color) }
        cursor -= lineHeight
    }

    /// Breaks one line of encoded text into lines no wider than `width`, at spaces where possible and inside words
    /// only when a word alone is too wide.
    static func wrap(_ text: [UInt8], font: StandardFont, size: Double, width: Double) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var current: [UInt8] = []
        var currentWidth = 0.0
        let spaceWidth = font.width(of: [WinAnsi.space], size: size)
        for wordSlice in text.split(separator: WinAnsi.space) {
            var word = Array(wordSlice)
            var wordWidth = font.width(of: word, size: size)
            if !current.isEmpty && currentWidth + spaceWidth + wordWidth <= width {
                current.append(WinAnsi.space)
                current += word
                currentWidth += spaceWidth + wordWidth
                continue
            }
            if !current.isEmpty { lines.append(current) }
            while wordWidth > width && word.count > 1 {
                var fitted = 1
                var used = Double(font.advance(word[0])) * size / 1000
                while fitted < word.count {
                    let next = Double(font.advance(word[fitted])) * size / 1000
                    if used + next > width { break }
                    used += next
                    fitted += 1
                }
                lines.append(Array(word[..<fitted]))
                word = Array(word[fitted...])
                wordWidth = font.width(of: word, size: size)
            }
            current = word
            currentWidth = wordWidth
        }
        if !current.isEmpty || lines.isEmpty { lines.append(current) }
        return lines
    }

    // MARK: Footer

    /// Draws every page's footer and hands the pages over.
    mutating func finish(footer title: String) -> [PDFCanvas] {
        let size = 8.0
        let y = Self.footerBaseline
        let encodedTitle = StandardFont.helvetica.truncate(WinAnsi.encodeLine(title), size: size, maxWidth: contentWidth * 0.6)
        for index in pages.indices {
            let number = WinAnsi.encodeLine("Page \(index + 1) of \(pages.count)")
            let numberX = right - StandardFont.helvetica.width(of: number, size: size)
            pages[index].line(from: (left, y + 12), to: (right, y + 12), width: 0.5, color: .rule)
            pages[index].text(encodedTitle, x: left, y: y, font: .helvetica, size: size, color: .muted)
            pages[index].text(number, x: numberX, y: y, font: .helvetica, size: size, color: .muted)
        }
        return pages
    }
}

// MARK: - Tables

extension ReportLayout {
    static let tableFontSize = 9.0
    static let tableRowHeight = 16.0
    static let tableHeaderHeight = 20.0
    static let cellPadding = 6.0

    mutating func addTable(_ table: PDFTable) {
        guard !table.columns.isEmpty else { return }
        let headers = table.columns.map { WinAnsi.encodeLine($0.title) }
        var rows = table.rows.map { row in table.columns.indices.map { $0 < row.count ? WinAnsi.encodeLine(row[$0]) : [] } }
        let empty = rows.isEmpty
        if empty { rows = [[WinAnsi.encodeLine("No data")] + Array(repeating: [], count: table.columns.count - 1)] }

        let alignments = table.columns.map(\.alignment)
        // Text columns take the spare width; numbers stay close to their neighbours.
        let widths = Self.columnWidths(headers: headers, rows: rows, available: contentWidth, stretchable: alignments.map { $0 == .left })
        ensure(Self.minimumHeight(of: .table(table)))
        addTableHeader(headers, widths: widths, alignments: alignments)
        for (index, row) in rows.enumerated() {
            if cursor - Self.tableRowHeight < contentBottom {
                closeTable()
                newPage()
                addTableHeader(headers, widths: widths, alignments: alignments)
            }
            let top = cursor, x = left, width = contentWidth
            if index % 2 == 1 {
                draw { $0.fillRect(x: x, y: top - Self.tableRowHeight, width: width, height: Self.tableRowHeight, color: .stripe) }
            }
            addCells(row, font: .helvetica, color: empty ? .muted : .text, widths: widths, alignments: alignments, height: Self.tableRowHeight)
        }
        closeTable()
        cursor -= 14
    }

    private mutating func addTableHeader(_ headers: [[UInt8]], widths: [Double], alignments: [PDFTable.Alignment]) {
        let top = cursor, x = left, width = contentWidth
        draw { $0.fillRect(x: x, y: top - Self.tableHeaderHeight, width: width, height: Self.tableHeaderHeight, color: .headerFill) }
        addCells(headers, font: .helveticaBold, color: .text, widths: widths, alignments: alignments, height: Self.tableHeaderHeight)
    }

    private mutating func closeTable() {
        let y = cursor, x = left, end = right
        draw { $0.line(from: (x, y), to: (end, y), width: 0.75, color: .rule) }
    }

    private mutating func addCells(
        _ cells: [[UInt8]], font: StandardFont, color: PDFColor, widths: [Double], alignments: [PDFTable.Alignment], height: Double
    ) {
        let size = Self.tableFontSize
        let y = Self.baseline(top: cursor, size: size, lineHeight: height)
        var x = left
        for (index, cell) in cells.enumerated() {
            let inner = widths[index] - 2 * Self.cellPadding
            let text = font.truncate(cell, size: size, maxWidth: inner)
            let textX =
                alignments[index] == .right
                ? x + widths[index] - Self.cellPadding - font.width(of: text, size: size)
                : x + Self.cellPadding
            draw { $0.text(text, x: textX, y: y, font: font, size: size, color: color) }
            x += widths[index]
        }
        cursor -= height
    }

    /// Column widths filling `available`. When everything fits, each column gets its natural width (its widest cell)
    /// and the spare space goes to the `stretchable` columns in proportion (to all when none is); otherwise narrow
    /// columns keep their width and the wide ones share what is left.
    static func columnWidths(headers: [[UInt8]], rows: [[[UInt8]]], available: Double, stretchable: [Bool]? = nil) -> [Double] {
        let size = tableFontSize
        var natural = headers.map { StandardFont.helveticaBold.width(of: $0, size: size) + 2 * cellPadding }
        for row in rows {
            for (index, cell) in row.enumerated() where index < natural.count {
                natural[index] = max(natural[index], StandardFont.helvetica.width(of: cell, size: size) + 2 * cellPadding)
            }
        }
        let total = natural.reduce(0, +)
        if total <= available {
            var growing = natural.indices.map { stretchable?[$0] ?? true }
            if !growing.contains(true) { growing = natural.map { _ in true } }
            let growingTotal = natural.indices.filter { growing[$0] }.map { natural[$0] }.reduce(0, +)
            return natural.indices.map { growing[$0] ? natural[$0] + (available - total) * natural[$0] / growingTotal : natural[$0] }
        }
        var widths = natural
        var remaining = available
        var open = Array(natural.indices)
        while !open.isEmpty {
            let share = remaining / Double(open.count)
            let fitting = open.filter { natural[$0] <= share }
            if fitting.isEmpty {
                for index in open { widths[index] = share }
                break
            }
            for index in fitting { remaining -= natural[index] }
            open.removeAll { fitting.contains($0) }
        }
        return widths
    }
}

// MARK: - Charts

/// A value axis from `lower` to `upper` in steps of a "nice" size (1, 2, 2.5 or 5 times a power of ten).
struct AxisScale: Equatable {
    var lower: Double
    var upper: Double
    var step: Double
    /// Digits after the decimal point the tick labels need.
    var decimals: Int

    var ticks: [Double] {
        let count = Int(((upper - lower) / step).rounded())
        return (0...max(count, 0)).map { lower + Double($0) * step }
    }

    /// A scale that includes zero and every value, with about `targetTicks` intervals; whole-number data never gets
    /// fractional ticks.
    init(values: [Double], targetTicks: Int = 5) {
        let finite = values.filter(\.isFinite)
        let low = min(0, finite.min() ?? 0)
        var high = max(0, finite.max() ?? 0)
        if high == low { high = low + 1 }
        let integral = finite.allSatisfy { $0 == $0.rounded() }
        let rawStep = (high - low) / Double(max(targetTicks, 1))
        let magnitude = pow(10, (log10(rawStep)).rounded(.down))
        var step = 10 * magnitude
        for multiple in [1.0, 2, 2.5, 5, 10] {
            let candidate = multiple * magnitude
            if integral && candidate != candidate.rounded() { continue }
            if candidate >= rawStep * (1 - 1e-9) {
                step = candidate
                break
            }
        }
        if integral { step = max(step, 1) }
        lower = (low / step).rounded(.down) * step
        upper = (high / step).rounded(.up) * step
        self.step = step
        decimals = Self.decimals(for: step)
    }

    static func decimals(for value: Double, limit: Int = 6) -> Int {
        var scaled = abs(value)
        for digits in 0..<limit {
            if abs(scaled - scaled.rounded()) < 1e-6 * max(1, scaled) { return digits }
            scaled *= 10
        }
        return limit
    }
}

/// The vertical bands of a chart, top to bottom.
struct ChartMetrics {
    let titleHeight: Double
    let valueTitleHeight: Double
    let plotHeight: Double
    let labelsHeight = 16.0
    let labelTitleHeight: Double

    init(_ chart: PDFChart) {
        titleHeight = chart.title == nil ? 0 : 20
        // Without an axis title there is still room for the value over the tallest bar.
        valueTitleHeight = chart.valueAxisTitle == nil ? 12 : 18
        plotHeight = max(chart.plotHeight, 40)
        labelTitleHeight = chart.labelAxisTitle == nil ? 0 : 14
    }

    var totalHeight: Double { titleHeight + valueTitleHeight + plotHeight + labelsHeight + labelTitleHeight }
}

extension ReportLayout {
    mutating func addChart(_ chart: PDFChart) {
        let labelSize = 8.0
        let metrics = ChartMetrics(chart)
        let (titleHeight, valueTitleHeight, plotHeight) = (metrics.titleHeight, metrics.valueTitleHeight, metrics.plotHeight)
        let (labelsHeight, labelTitleHeight) = (metrics.labelsHeight, metrics.labelTitleHeight)
        ensure(metrics.totalHeight)

        if let title = chart.title {
            let line = StandardFont.helveticaBold.truncate(WinAnsi.encodeLine(title), size: 11, maxWidth: contentWidth)
            let x = left, y = Self.baseline(top: cursor, size: 11, lineHeight: titleHeight)
            draw { $0.text(line, x: x, y: y, font: .helveticaBold, size: 11) }
        }
        let plotTop = cursor - titleHeight - valueTitleHeight
        let plotBottom = plotTop - plotHeight
        let values = chart.points.map { $0.value.isFinite ? $0.value : 0 }
        let scale = AxisScale(values: values)
        let tickLabels = scale.ticks.map { WinAnsi.encodeLine(PDFNumber.grouped($0, decimals: scale.decimals)) }
        let tickLabelWidth = tickLabels.map { StandardFont.helvetica.width(of: $0, size: labelSize) }.max() ?? 0
        let plotLeft = left + tickLabelWidth + 8
        let plotRight = right
        let plotWidth = plotRight - plotLeft
        let yFor = { (value: Double) in plotBottom + (value - scale.lower) / (scale.upper - scale.lower) * plotHeight }

        if let title = chart.valueAxisTitle {
            let line = StandardFont.helvetica.truncate(WinAnsi.encodeLine(title), size: labelSize, maxWidth: contentWidth)
            let x = left
            draw { $0.text(line, x: x, y: plotTop + 8, font: .helvetica, size: labelSize, color: .muted) }
        }
        // Grid lines and tick labels.
        for (tick, label) in zip(scale.ticks, tickLabels) {
            let y = yFor(tick)
            let labelX = plotLeft - 5 - StandardFont.helvetica.width(of: label, size: labelSize)
            draw {
                $0.line(from: (plotLeft, y), to: (plotRight, y), width: 0.5, color: .grid)
                $0.text(label, x: labelX, y: y - labelSize * 0.359, font: .helvetica, size: labelSize, color: .muted)
            }
        }

        let count = chart.points.count
        let slot = count > 0 ? plotWidth / Double(count) : plotWidth
        let zeroY = yFor(0)
        switch chart.style {
        case .bar:
            let barWidth = min(slot * 0.7, 56)
            for (index, value) in values.enumerated() {
                let x = plotLeft + slot * Double(index) + (slot - barWidth) / 2
                let top = yFor(value)
                draw { $0.fillRect(x: x, y: min(zeroY, top), width: barWidth, height: abs(top - zeroY), color: .accent) }
            }
        case .line:
            let points = values.enumerated().map { (x: plotLeft + slot * (Double($0.offset) + 0.5), y: yFor($0.element)) }
            let radius = count > 60 ? 0.0 : 2.2
            draw { canvas in
                canvas.polyline(points, width: 1.5, color: .accent)
                if radius > 0 { for point in points { canvas.fillCircle(x: point.x, y: point.y, radius: radius, color: .accent) } }
            }
        }
        addValueLabels(values, scale: scale, slot: slot, plotLeft: plotLeft, yFor: yFor, size: 7)
        // Axes over the bars so the zero line stays visible.
        draw {
            $0.line(from: (plotLeft, zeroY), to: (plotRight, zeroY), width: 0.75, color: .muted)
            $0.line(from: (plotLeft, plotBottom), to: (plotLeft, plotTop), width: 0.75, color: .rule)
        }
        if count == 0 {
            let text = WinAnsi.encodeLine("No data")
            let x = plotLeft + (plotWidth - StandardFont.helvetica.width(of: text, size: 10)) / 2
            draw { $0.text(text, x: x, y: plotBottom + plotHeight / 2, font: .helvetica, size: 10, color: .muted) }
        }
        addCategoryLabels(chart.points.map(\.label), slot: slot, plotLeft: plotLeft, baseline: plotBottom - 11, size: labelSize)
        if let title = chart.labelAxisTitle {
            let line = StandardFont.helvetica.truncate(WinAnsi.encodeLine(title), size: labelSize, maxWidth: plotWidth)
            let x = plotLeft + (plotWidth - StandardFont.helvetica.width(of: line, size: labelSize)) / 2
            let y = plotBottom - labelsHeight - 10
            draw { $0.text(line, x: x, y: y, font: .helvetica, size: labelSize, color: .muted) }
        }
        cursor = plotBottom - labelsHeight - labelTitleHeight - 16
    }

    /// Labels under the slots, every `k`-th one when they would otherwise collide.
    private mutating func addCategoryLabels(_ labels: [String], slot: Double, plotLeft: Double, baseline: Double, size: Double) {
        let encoded = labels.map(WinAnsi.encodeLine)
        let widest = encoded.map { StandardFont.helvetica.width(of: $0, size: size) }.max() ?? 0
        let every = max(1, Int(((widest + 6) / slot).rounded(.up)))
        let room = slot * Double(every) - 4
        for index in stride(from: 0, to: encoded.count, by: every) {
            let text = StandardFont.helvetica.truncate(encoded[index], size: size, maxWidth: room)
            let width = StandardFont.helvetica.width(of: text, size: size)
            let centred = plotLeft + slot * (Double(index) + 0.5) - width / 2
            let x = min(max(centred, left), right - width)
            draw { $0.text(text, x: x, y: baseline, font: .helvetica, size: size, color: .muted) }
        }
    }

    /// Each value over its bar or point, when every label fits its slot.
    private mutating func addValueLabels(
        _ values: [Double], scale: AxisScale, slot: Double, plotLeft: Double, yFor: (Double) -> Double, size: Double
    ) {
        let decimals = min(2, values.map { AxisScale.decimals(for: $0, limit: 2) }.max() ?? 0)
        let labels = values.map { WinAnsi.encodeLine(PDFNumber.grouped($0, decimals: decimals)) }
        let widths = labels.map { StandardFont.helvetica.width(of: $0, size: size) }
        guard let widest = widths.max(), widest + 4 <= slot else { return }
        for (index, label) in labels.enumerated() {
            let value = values[index]
            let x = plotLeft + slot * (Double(index) + 0.5) - widths[index] / 2
            let y = value < 0 ? yFor(value) - size - 2 : yFor(value) + 3.5
            draw { $0.text(label, x: x, y: y, font: .helvetica, size: size, color: .muted) }
        }
    }
}

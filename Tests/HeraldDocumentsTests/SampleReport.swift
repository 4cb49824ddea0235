import Foundation

@testable import HeraldDocuments

/// The multi-page report the structure and extraction tests share.
enum SampleReport {
    static let title = "Café Ünïcode — résumé"
    static let weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    static let creationDate = Date(timeIntervalSince1970: 1_748_764_800)  // 2025-06-01 08:00:00 UTC

    static func row(_ index: Int) -> [String] {
        ["/pages/item-\(index)", String(index * 10), "\(index % 100).5%", index % 9 == 0 ? "—" : "r\(index)"]
    }

    static var report: PDFReport {
        PDFReport(
            title: title,
            subtitle: ["example.com", "Period: 1–31 May 2025", "Generated 2025-06-01 08:00 UTC"],
            sections: [
                .heading("Summary"),
                .paragraph("Visits and impressions for the period (rounded). A backslash \\ and an emoji 😀 stay readable."),
                .chart(
                    PDFChart(
                        title: "Visits by weekday", labels: weekdays, values: [120, 340, 290, 410, 388, 95, 60],
                        valueAxisTitle: "Visits", labelAxisTitle: "Weekday"
                    )
                ),
                .heading("Top pages"),
                .table(PDFTable(headers: ["Page", "Views", "Conversion", "Note"], rows: (1...120).map(row))),
                .chart(PDFChart(title: "Daily trend", style: .line, labels: (1...31).map { "May \($0)" }, values: (1...31).map { Double($0 * 3) })),
            ]
        )
    }

    static func render(pageSize: PDFPageSize = .a4) -> [UInt8] {
        report.render(pageSize: pageSize, creationDate: creationDate)
    }
}

extension Array where Element == UInt8 {
    /// Every offset where `needle` starts.
    func offsets(of needle: String) -> [Int] {
        offsets(ofBytes: Array(needle.utf8))
    }

    func offsets(ofBytes pattern: [UInt8]) -> [Int] {
        guard let first = pattern.first, pattern.count <= count else { return [] }
        return (0...(count - pattern.count)).filter { self[$0] == first && self[$0..<$0 + pattern.count].elementsEqual(pattern) }
    }

    func contains(_ needle: String) -> Bool { !offsets(of: needle).isEmpty }

    func text(_ range: Range<Int>) -> String { String(decoding: self[range], as: UTF8.self) }

    func hasPrefix(_ prefix: String, at offset: Int) -> Bool {
        let pattern = Array(prefix.utf8)
        return offset >= 0 && offset + pattern.count <= count && Array(self[offset..<offset + pattern.count]) == pattern
    }
}

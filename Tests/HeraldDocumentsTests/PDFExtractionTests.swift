import Foundation
import Testing

@testable import HeraldDocuments

/// poppler-utils on the PATH, or why not.
enum Poppler {
    /// Set by the full test run, where a missing tool is a failure rather than a skip.
    static let required = ProcessInfo.processInfo.environment["HERALD_TEST_REQUIRE_SERVERS"] == "1"
    static let pdftotext = executable(named: "pdftotext")
    static let runs = pdftotext != nil || required
    static let skipReason: Comment =
        "pdftotext (poppler-utils) is not installed: apt-get install poppler-utils, or set HERALD_TEST_REQUIRE_SERVERS=1 to fail instead"

    static func executable(named name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a tool to completion, returning its exit status, standard output and standard error.
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Read before waiting so a full pipe cannot block the tool.
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
    }
}

@Suite("PDF text extraction with pdftotext")
struct PDFExtractionTests {
    @Test(.enabled(if: Poppler.runs, Poppler.skipReason))
    func popplerReadsBackTheReport() throws {
        guard let pdftotext = Poppler.pdftotext else {
            Issue.record("HERALD_TEST_REQUIRE_SERVERS=1 but pdftotext is not on the PATH (install poppler-utils)")
            return
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("herald-report-\(UUID().uuidString).pdf")
        try Data(SampleReport.render()).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }

        let result = try Poppler.run(pdftotext, ["-layout", file.path, "-"])
        #expect(result.status == 0)
        // Poppler reports broken cross-references or streams on standard error even when it recovers.
        #expect(result.errors.isEmpty, "pdftotext complained: \(result.errors)")
        let text = result.output

        #expect(text.contains(SampleReport.title))
        #expect(text.contains("Period: 1–31 May 2025"))
        #expect(text.contains("Visits and impressions for the period (rounded). A backslash \\ and an emoji ? stay readable."))
        for header in ["Page", "Views", "Conversion", "Note"] { #expect(text.contains(header)) }
        for cell in ["/pages/item-1 ", "/pages/item-77", "/pages/item-120", "1200", "770", "20.5%", "r119", "—"] {
            #expect(text.contains(cell), "cell \(cell)")
        }
        #expect(text.contains("Page 2 of"))
        let pages = text.split(separator: "\u{0C}", omittingEmptySubsequences: true).filter { !$0.allSatisfy(\.isWhitespace) }
        #expect(text.contains("Page \(pages.count) of \(pages.count)"))
        // The header row repeats on each page the table reaches.
        let headerRows = text.split(separator: "\n").filter { $0.contains("Views") && $0.contains("Conversion") }
        #expect(headerRows.count >= 2)
        #expect(text.contains("Visits by weekday"))
        #expect(text.contains("Weekday"))
        for day in SampleReport.weekdays { #expect(text.contains(day), "label \(day)") }
        for tick in ["100", "200", "400", "500"] { #expect(text.contains(tick)) }
        #expect(text.contains("Daily trend"))
        #expect(text.contains("May 1"))

        // Numbers are right-aligned: with word boxes in page coordinates, "990", "1000" and "1200" end at the same x
        // although they sit on different pages, while the left-aligned notes start at the same x.
        let boxes = try Poppler.run(pdftotext, ["-bbox", file.path, "-"]).output
        let numberEnds = try ["990", "1000", "1200"].map { try #require(Self.wordBox($0, in: boxes)).xMax }
        #expect(numberEnds.allSatisfy { abs($0 - numberEnds[0]) < 0.5 }, "right edges \(numberEnds)")
        let noteStarts = try ["r1", "r100", "r119"].map { try #require(Self.wordBox($0, in: boxes)).xMin }
        #expect(noteStarts.allSatisfy { abs($0 - noteStarts[0]) < 0.5 }, "left edges \(noteStarts)")
    }

    /// The box of the first word equal to `word` in `pdftotext -bbox` output.
    static func wordBox(_ word: String, in html: String) -> (xMin: Double, xMax: Double)? {
        for line in html.split(separator: "\n") where line.hasSuffix(">\(word)</word>") {
            func attribute(_ name: String) -> Double? {
                guard let start = line.range(of: "\(name)=\"") else { return nil }
                return Double(line[start.upperBound...].prefix { $0 != "\"" })
            }
            if let xMin = attribute("xMin"), let xMax = attribute("xMax") { return (xMin, xMax) }
        }
        return nil
    }
}

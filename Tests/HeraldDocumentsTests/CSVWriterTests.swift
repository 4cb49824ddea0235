import Foundation
import Testing

@testable import HeraldDocuments

@Suite("CSVWriter")
struct CSVWriterTests {
    private func csv(_ rows: [[String]], bom: Bool = false, protect: Bool = true) -> String {
        String(decoding: CSVWriter.encode(rows: rows, byteOrderMark: bom, protectsAgainstFormulas: protect), as: UTF8.self)
    }

    @Test func recordsEndInCRLF() {
        #expect(csv([["a", "b"], ["1", "2"]]) == "a,b\r\n1,2\r\n")
        #expect(csv([[""], []]) == "\r\n\r\n")
    }

    @Test(arguments: [
        ("plain", "plain"),
        ("a,b", "\"a,b\""),
        ("He said \"hi\"", "\"He said \"\"hi\"\"\""),
        ("line\nbreak", "\"line\nbreak\""),
        ("carriage\rreturn", "\"carriage\rreturn\""),
        ("crlf\r\nend", "\"crlf\r\nend\""),
        ("\"", "\"\"\"\""),
        (" spaced ", " spaced "),
        ("Café ☕️ 日本", "Café ☕️ 日本"),
    ])
    func quoting(field: String, expected: String) {
        #expect(CSVWriter.encodeField(field) == expected)
    }

    @Test(arguments: [
        ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "\"'\rcmd\""),
        ("=1,2", "\"'=1,2\""),
        ("=HYPERLINK(\"http://x\")", "\"'=HYPERLINK(\"\"http://x\"\")\""),
        ("-", "'-"),
        ("--", "'--"),
        ("-1e5", "'-1e5"),
        ("-12.5", "-12.5"),
        ("+3", "+3"),
        ("-.25", "-.25"),
        ("-4%", "-4%"),
        ("12", "12"),
        ("1-2", "1-2"),
        ("a=b", "a=b"),
        ("", ""),
    ])
    func formulaInjection(field: String, expected: String) {
        #expect(CSVWriter.encodeField(field) == expected)
    }

    @Test func protectionCanBeTurnedOff() {
        #expect(csv([["=1+1", "@x"]], protect: false) == "=1+1,@x\r\n")
    }

    @Test func byteOrderMarkOnlyOnce() {
        var writer = CSVWriter(byteOrderMark: true)
        writer.appendRow(["é"])
        let first = writer.takeBytes()
        writer.appendRow(["x"])
        let second = writer.takeBytes()
        #expect(first == [0xEF, 0xBB, 0xBF, 0xC3, 0xA9, 0x0D, 0x0A])
        #expect(second == Array("x\r\n".utf8))
        #expect(CSVWriter.encode(rows: [["a"]]).first == UInt8(ascii: "a"))
    }

    @Test func chunksConcatenateToTheWholeDocument() {
        let rows = (0..<1000).map { ["row \($0)", "\($0 * 3)", $0 % 7 == 0 ? "=evil()" : "ok, fine"] }
        var writer = CSVWriter(byteOrderMark: true)
        var chunks: [UInt8] = []
        var data = Data()
        for (index, row) in rows.enumerated() {
            writer.appendRow(row)
            if writer.pendingByteCount > 512 {
                if index % 2 == 0 { chunks += writer.takeBytes() } else { chunks += writer.takeData() }
                #expect(writer.pendingByteCount == 0)
            }
        }
        chunks += writer.takeBytes()
        data.append(contentsOf: chunks)
        #expect(chunks == CSVWriter.encode(rows: rows, byteOrderMark: true))
        #expect(data.count == chunks.count)
        #expect(writer.takeBytes().isEmpty)
    }
}

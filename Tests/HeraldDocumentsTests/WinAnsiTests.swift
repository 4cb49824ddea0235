import Testing

@testable import HeraldDocuments

@Suite("WinAnsi text and font metrics")
struct WinAnsiTests {
    @Test func encodesCp1252AndReplacesTheRest() {
        #expect(WinAnsi.encodeLine("Café") == [0x43, 0x61, 0x66, 0xE9])
        // Decomposed é becomes the single precomposed byte.
        #expect(WinAnsi.encodeLine("Cafe\u{301}") == [0x43, 0x61, 0x66, 0xE9])
        #expect(WinAnsi.encodeLine("— € … “x” Ÿ ž") == [0x97, 0x20, 0x80, 0x20, 0x85, 0x20, 0x93, 0x78, 0x94, 0x20, 0x9F, 0x20, 0x9E])
        #expect(WinAnsi.encodeLine("😀 → 日") == [0x3F, 0x20, 0x3F, 0x20, 0x3F])
        // A family emoji is several scalars but one character, so one `?`.
        #expect(WinAnsi.encodeLine("👨‍👩‍👧") == [0x3F])
        #expect(WinAnsi.encodeLine("a\tb\nc\u{7}") == [0x61, 0x20, 0x62, 0x20, 0x63, 0x3F])
        #expect(WinAnsi.encodeLines("one\r\ntwo\nthree").count == 3)
    }

    @Test func widthsComeFromTheAFMTables() {
        // H 722 + e 556 + l 222 + l 222 + o 556 = 2278 thousandths.
        #expect(abs(StandardFont.helvetica.width(of: Array("Hello".utf8), size: 10) - 22.78) < 1e-9)
        // Bold: H 722 + e 556 + l 278 + l 278 + o 611 = 2445.
        #expect(abs(StandardFont.helveticaBold.width(of: Array("Hello".utf8), size: 10) - 24.45) < 1e-9)
        #expect(StandardFont.helvetica.advance(0xE9) == 556)
        #expect(StandardFont.helveticaBold.advance(0xFF) == 556)
        #expect(StandardFont.helvetica.advance(0x97) == 1000)
    }

    @Test func truncationEndsInAnEllipsis() {
        let text = Array("A fairly long cell value".utf8)
        let full = StandardFont.helvetica.width(of: text, size: 9)
        #expect(StandardFont.helvetica.truncate(text, size: 9, maxWidth: full) == text)
        let cut = StandardFont.helvetica.truncate(text, size: 9, maxWidth: full / 2)
        #expect(cut.last == WinAnsi.ellipsis)
        #expect(StandardFont.helvetica.width(of: cut, size: 9) <= full / 2)
        #expect(cut.dropLast().last != WinAnsi.space)
    }

    @Test func wrapsAtSpacesAndBreaksLongWords() {
        let text = WinAnsi.encodeLine("alpha beta gamma delta " + String(repeating: "x", count: 80))
        let lines = ReportLayout.wrap(text, font: .helvetica, size: 10, width: 100)
        #expect(lines.count > 3)
        for line in lines { #expect(StandardFont.helvetica.width(of: line, size: 10) <= 100) }
        #expect(String(decoding: lines[0], as: UTF8.self) == "alpha beta gamma")
        #expect(lines.flatMap { $0 }.filter { $0 == UInt8(ascii: "x") }.count == 80)
    }
}

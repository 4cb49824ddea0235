import Foundation

/// Text in Windows-1252 ("WinAnsi"), the single-byte encoding the standard 14 PDF fonts use with `/WinAnsiEncoding`.
///
/// Every byte the encoder produces is a character the fonts can draw and `pdftotext` maps back to Unicode, so what
/// the reader copies out of the PDF is what Herald put in. Anything else becomes `?`.
enum WinAnsi {
    static let space: UInt8 = 0x20
    static let questionMark: UInt8 = 0x3F
    static let ellipsis: UInt8 = 0x85

    /// Encodes one line of text: line breaks and tabs become spaces, characters cp1252 cannot hold become `?`.
    static func encodeLine(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        // Precomposed first, so "e" + U+0301 is the single cp1252 byte for "é" rather than "e?".
        for character in text.precomposedStringWithCanonicalMapping {
            bytes.append(byte(for: character))
        }
        return bytes
    }

    /// Encodes text that may hold several lines, one encoded line per line of the input.
    static func encodeLines(_ text: String) -> [[UInt8]] {
        text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map { encodeLine(String($0)) }
    }

    static func byte(for character: Character) -> UInt8 {
        if character.isNewline { return space }
        let scalars = character.unicodeScalars
        // A cluster of several scalars (emoji sequences, marks without a precomposed form) is one unknown character.
        guard scalars.count == 1, let scalar = scalars.first else { return questionMark }
        return byte(for: scalar) ?? questionMark
    }

    /// The cp1252 byte for a scalar, or nil when the encoding has none (control characters included).
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        switch scalar.value {
        case 0x09: return space
        case 0x20...0x7E, 0xA0...0xFF: return UInt8(scalar.value)
        case 0x20AC: return 0x80
        case 0x201A: return 0x82
        case 0x0192: return 0x83
        case 0x201E: return 0x84
        case 0x2026: return 0x85
        case 0x2020: return 0x86
        case 0x2021: return 0x87
        case 0x02C6: return 0x88
        case 0x2030: return 0x89
        case 0x0160: return 0x8A
        case 0x2039: return 0x8B
        case 0x0152: return 0x8C
        case 0x017D: return 0x8E
        case 0x2018: return 0x91
        case 0x2019: return 0x92
        case 0x201C: return 0x93
        case 0x201D: return 0x94
        case 0x2022: return 0x95
        case 0x2013: return 0x96
        case 0x2014: return 0x97
        case 0x02DC: return 0x98
        case 0x2122: return 0x99
        case 0x0161: return 0x9A
        case 0x203A: return 0x9B
        case 0x0153: return 0x9C
        case 0x017E: return 0x9E
        case 0x0178: return 0x9F
        default: return nil
        }
    }
}

/// The two standard 14 fonts Herald's documents use, with their Adobe AFM advance widths for WinAnsi codes 32–255.
enum StandardFont: Sendable, CaseIterable {
    case helvetica
    case helveticaBold

    /// The PostScript name in the font dictionary.
    var baseFont: String {
        switch self {
        case .helvetica: "Helvetica"
        case .helveticaBold: "Helvetica-Bold"
        }
    }

    /// The name the page resources give the font.
    var resourceName: String {
        switch self {
        case .helvetica: "F1"
        case .helveticaBold: "F2"
        }
    }

    /// Advance width of one WinAnsi byte in thousandths of the font size.
    func advance(_ byte: UInt8) -> Int {
        guard byte >= 32 else { return 0 }
        let table = self == .helvetica ? Self.helveticaWidths : Self.helveticaBoldWidths
        return Int(table[Int(byte) - 32])
    }

    /// Width in points of encoded text set at `size` points.
    func width(of bytes: some Sequence<UInt8>, size: Double) -> Double {
        var units = 0
        for byte in bytes { units += advance(byte) }
        return Double(units) * size / 1000
    }

    /// Cuts `bytes` to fit `maxWidth`, ending in an ellipsis when anything had to go.
    func truncate(_ bytes: [UInt8], size: Double, maxWidth: Double) -> [UInt8] {
        // The tolerance absorbs rounding when `maxWidth` was itself computed from this text's width.
        if width(of: bytes, size: size) <= maxWidth + 0.001 { return bytes }
        let budget = maxWidth - width(of: [WinAnsi.ellipsis], size: size)
        guard budget > 0 else { return [] }
        var kept: [UInt8] = []
        var used = 0.0
        for byte in bytes {
            let next = Double(advance(byte)) * size / 1000
            if used + next > budget { break }
            kept.append(byte)
            used += next
        }
        while kept.last == WinAnsi.space { kept.removeLast() }
        kept.append(WinAnsi.ellipsis)
        return kept
    }

    // Codes 32–255, sixteen to a line. Codes cp1252 leaves undefined (0x7F, 0x81, 0x8D, 0x8F, 0x90, 0x9D) are never
    // produced by `WinAnsi`; they carry the bullet's width only to keep the table dense.
    private static let helveticaWidths: [UInt16] = [
        278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,  // 0x20
        556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,  // 0x30
        1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,  // 0x40
        667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,  // 0x50
        333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,  // 0x60
        556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 350,  // 0x70
        556, 350, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 350, 611, 350,  // 0x80
        350, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 350, 500, 667,  // 0x90
        278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333,  // 0xA0
        400, 584, 333, 333, 333, 556, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611,  // 0xB0
        667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,  // 0xC0
        722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,  // 0xD0
        556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278,  // 0xE0
        556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,  // 0xF0
    ]

    private static let helveticaBoldWidths: [UInt16] = [
        278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,  // 0x20
        556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,  // 0x30
        975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,  // 0x40
        667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,  // 0x50
        333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,  // 0x60
        611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 350,  // 0x70
        556, 350, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 350, 611, 350,  // 0x80
        350, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 350, 500, 667,  // 0x90
        278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333,  // 0xA0
        400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611,  // 0xB0
        722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,  // 0xC0
        722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,  // 0xD0
        556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278,  // 0xE0
        611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,  // 0xF0
    ]
}

import Foundation
import HeraldCore

/// Writes a ``MailMessage`` as an RFC 5322 / MIME message that every mail system accepts unchanged.
///
/// The output is 7-bit ASCII with CRLF line endings and no line longer than 998 characters: headers with
/// non-ASCII text use RFC 2047 encoded words (non-ASCII attachment names RFC 2231), non-ASCII or long-lined text
/// bodies are quoted-printable, attachments are base64 in 76-character lines. Text with HTML becomes
/// `multipart/alternative` (plain text first); attachments wrap the body in `multipart/mixed`.
public struct MIMEWriter: Sendable {
    private let makeBoundary: @Sendable () -> String

    /// A writer with random boundaries.
    public init() {
        self.makeBoundary = { "=_herald_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "") }
    }

    /// A writer whose boundaries come from `makeBoundary` (tests make them predictable). A boundary must be 1 to
    /// 70 characters from RFC 2046's set and must not occur in any part.
    public init(makeBoundary: @escaping @Sendable () -> String) {
        self.makeBoundary = makeBoundary
    }

    /// A new `Message-ID` value, with angle brackets, in the sender's domain: `<0190…@example.com>`.
    public static func makeMessageId(domain: String) -> String {
        "<\(UUID.v7().lowercased)@\(domain.isEmpty ? "herald.invalid" : domain)>"
    }

    /// The complete message: headers, a blank line and the body, CRLF line endings.
    ///
    /// - Parameters:
    ///   - messageId: the `Message-ID` value with angle brackets (``makeMessageId(domain:)``).
    ///   - date: the `Date` header's time.
    public func write(_ message: MailMessage, messageId: String, date: Date = Date()) -> [UInt8] {
        var out = ""
        out += Self.header("Date", Self.formatDate(date))
        out += Self.header("From", Self.addressList([message.from]))
        out += Self.header("To", Self.addressList(message.to))
        if let replyTo = message.replyTo { out += Self.header("Reply-To", Self.addressList([replyTo])) }
        out += Self.header("Subject", Self.unstructured(message.subject))
        out += Self.header("Message-ID", messageId)
        out += Self.header("MIME-Version", "1.0")
        for extra in message.headers {
            out += Self.header(extra.name, MIMEWriter.isPlainASCII(extra.value) ? extra.value : Self.encodedWords(extra.value))
        }
        out += body(message)
        return Array(out.utf8)
    }

    // MARK: Body

    private func body(_ message: MailMessage) -> String {
        let textPart = Self.textPart(message.text, subtype: "plain")
        var content: Part = textPart
        if let html = message.html {
            content = multipart("alternative", [textPart, Self.textPart(html, subtype: "html")])
        }
        if !message.attachments.isEmpty {
            content = multipart("mixed", [content] + message.attachments.map(Self.attachmentPart))
        }
        return content.headers.map { Self.header($0.0, $0.1) }.joined() + "\r\n" + content.body
    }

    /// One MIME entity: its content headers and its encoded body (CRLF line endings, no final CRLF needed).
    struct Part {
        var headers: [(String, String)]
        var body: String
    }

    private func multipart(_ subtype: String, _ parts: [Part]) -> Part {
        var boundary = makeBoundary()
        let rendered = parts.map { part in part.headers.map { Self.header($0.0, $0.1) }.joined() + "\r\n" + part.body }
        // A boundary that occurs in a part would end it early; a fresh random one never does in practice.
        while rendered.contains(where: { $0.contains(boundary) }) { boundary = makeBoundary() + "_" + String(Int.random(in: 0..<1_000_000)) }
        var body = ""
        for part in rendered { body += "--\(boundary)\r\n\(part)\r\n" }
        body += "--\(boundary)--\r\n"
        return Part(headers: [("Content-Type", "multipart/\(subtype); boundary=\"\(boundary)\"")], body: body)
    }

    static func textPart(_ text: String, subtype: String) -> Part {
        let lines = normalizedLines(text)
        let sevenBit = lines.allSatisfy { line in line.utf8.count <= 76 && line.utf8.allSatisfy { $0 < 0x80 } }
        if sevenBit {
            return Part(
                headers: [("Content-Type", "text/\(subtype); charset=utf-8"), ("Content-Transfer-Encoding", "7bit")],
                body: lines.joined(separator: "\r\n") + "\r\n"
            )
        }
        return Part(
            headers: [("Content-Type", "text/\(subtype); charset=utf-8"), ("Content-Transfer-Encoding", "quoted-printable")],
            body: quotedPrintable(lines) + "\r\n"
        )
    }

    static func attachmentPart(_ attachment: MailAttachment) -> Part {
        let name = attachment.fileName
        let contentType: String
        let disposition: String
        if isPlainASCII(name) {
            let quoted = "\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            contentType = "\(attachment.contentType); name=\(quoted)"
            disposition = "attachment; filename=\(quoted)"
        } else {
            // RFC 2231 for clients that read it, an encoded word in `name` for the ones that do not.
            contentType = "\(attachment.contentType); name=\"\(encodedWords(name).replacingOccurrences(of: " ", with: ""))\""
            disposition = "attachment; filename*=utf-8''\(percentEncoded(name))"
        }
        return Part(
            headers: [("Content-Type", contentType), ("Content-Disposition", disposition), ("Content-Transfer-Encoding", "base64")],
            body: base64Lines(attachment.bytes)
        )
    }

    // MARK: Encodings

    /// The text split into lines at CRLF, CR or LF.
    static func normalizedLines(_ text: String) -> [String] {
        var lines: [String] = []
        var current: [UInt8] = []
        var previousWasCR = false
        for byte in text.utf8 {
            if byte == 0x0A && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = byte == 0x0D
            if byte == 0x0A || byte == 0x0D {
                lines.append(String(decoding: current, as: UTF8.self))
                current.removeAll(keepingCapacity: true)
            } else {
                current.append(byte)
            }
        }
        lines.append(String(decoding: current, as: UTF8.self))
        if lines.count > 1, lines.last?.isEmpty == true { lines.removeLast() }
        return lines
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// RFC 2045 quoted-printable of UTF-8 lines: hard line breaks as CRLF, soft breaks keep lines at 76 characters,
    /// trailing whitespace and a leading dot encoded.
    static func quotedPrintable(_ lines: [String]) -> String {
        var out: [UInt8] = []
        for (index, line) in lines.enumerated() {
            if index > 0 { out += [0x0D, 0x0A] }
            let bytes = Array(line.utf8)
            var lineLength = 0
            for (position, byte) in bytes.enumerated() {
                let isLast = position == bytes.count - 1
                let literal =
                    (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "=") && !(position == 0 && byte == UInt8(ascii: ".")))
                    || ((byte == 0x20 || byte == 0x09) && !isLast)
                let token: [UInt8] = literal ? [byte] : [UInt8(ascii: "="), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
                // 75 characters plus the soft break's `=` make the 76 that RFC 2045 allows.
                if lineLength + token.count > 75 {
                    out += [UInt8(ascii: "="), 0x0D, 0x0A]
                    lineLength = 0
                }
                out += token
                lineLength += token.count
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Base64 in lines of 76 characters, each ending in CRLF.
    static func base64Lines(_ bytes: [UInt8]) -> String {
        let encoded = Data(bytes).base64EncodedString()
        var out = ""
        out.reserveCapacity(encoded.utf8.count + encoded.utf8.count / 76 * 2 + 2)
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let end = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
            out += encoded[index..<end]
            out += "\r\n"
            index = end
        }
        return out
    }

    static func isPlainASCII(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F } && !text.contains("=?")
    }

    /// RFC 2047 `B` encoded words of at most 64 characters each, split between characters, joined by spaces (which
    /// decoders drop between adjacent encoded words).
    static func encodedWords(_ text: String) -> String {
        var words: [String] = []
        var chunk: [UInt8] = []
        // 39 bytes make 52 base64 characters; with `=?utf-8?B?` and `?=` a word is 64 long, so `Subject: ` and a
        // word fit in 78 columns.
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 39, !chunk.isEmpty {
                words.append("=?utf-8?B?\(Data(chunk).base64EncodedString())?=")
                chunk.removeAll()
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append("=?utf-8?B?\(Data(chunk).base64EncodedString())?=") }
        return words.joined(separator: " ")
    }

    /// An unstructured header value (the subject): as it is when plain ASCII, else encoded words.
    static func unstructured(_ text: String) -> String {
        isPlainASCII(text) ? text : encodedWords(text)
    }

    private static let atextPunctuation = Set("!#$%&'*+-/=?^_`{|}~ ".utf8)

    /// A display name as an RFC 5322 phrase: atoms as they are, other ASCII quoted, non-ASCII encoded.
    static func phrase(_ name: String) -> String {
        guard isPlainASCII(name) else { return encodedWords(name) }
        if name.utf8.allSatisfy({ MailText.isAlphanumeric($0) || atextPunctuation.contains($0) }) { return name }
        return "\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func addressList(_ addresses: [MailAddress]) -> String {
        addresses.map { address in
            guard let name = address.name else { return address.address }
            return "\(phrase(name)) <\(address.address)>"
        }.joined(separator: ", ")
    }

    /// RFC 3986 unreserved characters as they are, every other UTF-8 byte as `%XX` (RFC 2231 values).
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if MailText.isAlphanumeric(byte) || "-._~".utf8.contains(byte) {
                out.unicodeScalars.append(UnicodeScalar(byte))
            } else {
                out += "%" + String(decoding: [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]], as: UTF8.self)
            }
        }
        return out
    }

    /// `Name: value` folded at spaces so lines stay within 78 characters where the value allows, ending in CRLF.
    static func header(_ name: String, _ value: String) -> String {
        let words = value.split(separator: " ", omittingEmptySubsequences: false)
        var out = ""
        var line = "\(name):"
        // The first word stays on the name's line: a value that starts on a folded line reads as starting with a
        // space in some clients (a long List-Unsubscribe URL did).
        var first = true
        for word in words {
            if !first, line.utf8.count + 1 + word.utf8.count > 78, !line.isEmpty, line.last != " " {
                out += line + "\r\n"
                line = ""
            }
            line += " " + word
            first = false
        }
        return out + line + "\r\n"
    }

    private static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// RFC 5322 date-time in UTC: `Tue, 05 Mar 2024 14:03:09 +0000`.
    static func formatDate(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        let parts = calendar.dateComponents([.weekday, .day, .month, .year, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String {
            let value = value ?? 0
            return value < 10 ? "0\(value)" : String(value)
        }
        let weekday = weekdays[((parts.weekday ?? 1) - 1 + 7) % 7]
        let month = months[((parts.month ?? 1) - 1 + 12) % 12]
        return "\(weekday), \(two(parts.day)) \(month) \(parts.year ?? 1970) \(two(parts.hour)):\(two(parts.minute)):\(two(parts.second)) +0000"
    }
}

import Foundation
import NIOCore
import Testing

@testable import HeraldMail

/// The MIME output: headers, structure, encodings, and the SMTP data framing around it.
@Suite struct MIMEWriterTests {
    static let date = Date(timeIntervalSince1970: 1_709_647_389)  // Tue, 05 Mar 2024 14:03:09 UTC

    /// A writer whose boundaries are `b1`, `b2`, … so the output can be compared as text.
    static func writer() -> MIMEWriter {
        let counter = Counter()
        return MIMEWriter { "b\(counter.next())" }
    }

    final class Counter: Sendable {
        private let value = Transcript()
        func next() -> Int {
            value.append("")
            return value.all.count
        }
    }

    static func render(_ message: MailMessage) -> String {
        String(decoding: writer().write(message, messageId: "<id-1@example.com>", date: date), as: UTF8.self)
    }

    @Test func writesAPlainTextMessageExactly() throws {
        let message = try MailMessage(
            from: try MailAddress.parse("Herald <reports@example.com>"),
            to: [try MailAddress("ops@example.com")],
            subject: "Weekly report",
            text: "Hello,\nyour report is ready.\n"
        )
        let expected = [
            "Date: Tue, 05 Mar 2024 14:03:09 +0000",
            "From: Herald <reports@example.com>",
            "To: ops@example.com",
            "Subject: Weekly report",
            "Message-ID: <id-1@example.com>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 7bit",
            "",
            "Hello,",
            "your report is ready.",
            "",
        ].joined(separator: "\r\n")
        #expect(Self.render(message) == expected)
    }

    @Test func writesTextAndHTMLAsAlternativesInsideMixedWithAttachments() throws {
        let output = Self.render(try richMessage())
        let lines = output.components(separatedBy: "\r\n")
        #expect(lines.contains("Content-Type: multipart/mixed; boundary=\"b2\""))
        #expect(lines.contains("Content-Type: multipart/alternative; boundary=\"b1\""))
        // Plain text first, then HTML, then the attachments, each closed by its boundary.
        let plain = try #require(output.range(of: "Content-Type: text/plain; charset=utf-8"))
        let html = try #require(output.range(of: "Content-Type: text/html; charset=utf-8"))
        let pdf = try #require(output.range(of: "Content-Type: application/pdf; name=\"report-2024-05.pdf\""))
        #expect(plain.lowerBound < html.lowerBound && html.lowerBound < pdf.lowerBound)
        #expect(output.contains("\r\n--b1--\r\n") && output.hasSuffix("\r\n--b2--\r\n"))
        #expect(lines.filter { $0 == "--b2" }.count == 3)
        #expect(lines.filter { $0 == "--b1" }.count == 2)
        #expect(lines.contains("Content-Disposition: attachment; filename=\"report-2024-05.pdf\""))
        #expect(lines.contains("Content-Disposition: attachment; filename*=utf-8''%C3%9Cbersicht.csv"))
        #expect(lines.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"))
        #expect(
            output.contains("List-Unsubscribe: <https://herald.example.com/unsubscribe/abc123>,\r\n <mailto:unsubscribe@example.com?subject=abc123>"))
        #expect(lines.contains("Reply-To: support@example.com"))
    }

    @Test func everyLineIsASCIIWithCRLFAndShort() throws {
        let output = Self.writer().write(try richMessage(), messageId: "<id@example.com>", date: Self.date)
        #expect(output.allSatisfy { $0 < 0x80 })
        for (index, byte) in output.enumerated() where byte == 0x0A { #expect(index > 0 && output[index - 1] == 0x0D) }
        for (index, byte) in output.enumerated() where byte == 0x0D { #expect(index + 1 < output.count && output[index + 1] == 0x0A) }
        let lines = String(decoding: output, as: UTF8.self).components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.utf8.count <= 78 })
    }

    @Test func encodesNonASCIISubjectsAndNamesAsEncodedWords() throws {
        let output = Self.render(try richMessage())
        let headers = output.components(separatedBy: "\r\n\r\n")[0].replacingOccurrences(of: "\r\n ", with: " ")
        let subject = try #require(headers.components(separatedBy: "\r\n").first { $0.hasPrefix("Subject: ") })
        let encoded = String(subject.dropFirst("Subject: ".count))
        #expect(encoded.hasPrefix("=?utf-8?B?"))
        #expect(decodeEncodedWords(encoded) == "Wöchentlicher Bericht: 1.234 Besucher 🎉")
        let from = try #require(headers.components(separatedBy: "\r\n").first { $0.hasPrefix("From: ") })
        #expect(from.hasSuffix(" <reports@example.com>"))
        let name = String(from.dropFirst("From: ".count).dropLast(" <reports@example.com>".count))
        #expect(decodeEncodedWords(name) == "Herald Reports – Köln")
        #expect(headers.contains("To: ops@example.com, Finance Team <finance@example.com>"))
    }

    @Test func splitsLongEncodedWordsBetweenCharacters() {
        let text = String(repeating: "é€🎉", count: 30)
        let words = MIMEWriter.encodedWords(text).split(separator: " ")
        #expect(words.count > 3)
        #expect(words.allSatisfy { $0.count <= 75 })
        // Every word decodes on its own: no character is cut in half.
        for word in words { #expect(String(validating: Data(base64Encoded: String(word.dropFirst(10).dropLast(2))) ?? Data(), as: UTF8.self) != nil) }
        #expect(decodeEncodedWords(MIMEWriter.encodedWords(text)) == text)
    }

    @Test func quotesDisplayNamesWithSpecials() throws {
        let address = try MailAddress("ops@example.com", name: "Ops, \"Night\" Shift")
        #expect(MIMEWriter.addressList([address]) == #""Ops, \"Night\" Shift" <ops@example.com>"#)
        #expect(MIMEWriter.addressList([try MailAddress("a@example.com", name: "Plain Name")]) == "Plain Name <a@example.com>")
        // An ASCII value that looks like an encoded word is encoded, so no client decodes it by surprise.
        #expect(MIMEWriter.unstructured("=?utf-8?B?aGk=?=").hasPrefix("=?utf-8?B?"))
    }

    @Test func foldsLongHeadersAtSpaces() throws {
        let recipients = try (0..<8).map { try MailAddress("recipient.number\($0)@example.com", name: "Recipient \($0)") }
        let folded = MIMEWriter.header("To", MIMEWriter.addressList(recipients))
        let lines = folded.components(separatedBy: "\r\n").dropLast()
        #expect(lines.count > 3)
        #expect(lines.allSatisfy { $0.utf8.count <= 78 })
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix(" ") })
        #expect(folded.replacingOccurrences(of: "\r\n ", with: " ") == "To: " + MIMEWriter.addressList(recipients) + "\r\n")
        // A first word too long for the line stays on the name's line rather than leaving it empty.
        let url = "<https://herald.example.com/email/unsubscribe/" + String(repeating: "x", count: 90) + ">"
        #expect(MIMEWriter.header("List-Unsubscribe", url) == "List-Unsubscribe: \(url)\r\n")
    }

    @Test func encodesNonASCIIOrLongTextAsQuotedPrintable() throws {
        let text = "Grüße aus Köln \nA line with trailing space \n.leading dot\n" + String(repeating: "long ", count: 40) + "= sign"
        let part = MIMEWriter.textPart(text, subtype: "plain")
        #expect(part.headers.contains { $0 == ("Content-Transfer-Encoding", "quoted-printable") } == true)
        let lines = part.body.components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.utf8.count <= 76 })
        #expect(lines.allSatisfy { !$0.hasSuffix(" ") && !$0.hasPrefix(".") })
        #expect(part.body.contains("Gr=C3=BC=C3=9Fe"))
        let decoded = String(decoding: decodeQuotedPrintable(part.body), as: UTF8.self)
        #expect(decoded == text.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n")
    }

    @Test func keepsShortASCIITextAs7BitAndNormalisesLineEndings() {
        let part = MIMEWriter.textPart("one\rtwo\r\nthree\nfour", subtype: "plain")
        #expect(part.headers.contains { $0 == ("Content-Transfer-Encoding", "7bit") } == true)
        #expect(part.body == "one\r\ntwo\r\nthree\r\nfour\r\n")
    }

    @Test func writesAttachmentsAsBase64In76CharacterLines() throws {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let part = MIMEWriter.attachmentPart(try MailAttachment(fileName: "data.bin", contentType: "application/octet-stream", bytes: bytes))
        let lines = part.body.components(separatedBy: "\r\n").dropLast()
        #expect(lines.dropLast().allSatisfy { $0.count == 76 })
        #expect(Data(base64Encoded: lines.joined()) == Data(bytes))
        #expect(MIMEWriter.base64Lines([]) == "")
    }

    @Test func formatsDatesAndMessageIds() {
        #expect(MIMEWriter.formatDate(Date(timeIntervalSince1970: 0)) == "Thu, 01 Jan 1970 00:00:00 +0000")
        #expect(MIMEWriter.formatDate(Self.date) == "Tue, 05 Mar 2024 14:03:09 +0000")
        let id = MIMEWriter.makeMessageId(domain: "example.com")
        #expect(id.hasPrefix("<") && id.hasSuffix("@example.com>"))
        #expect(id != MIMEWriter.makeMessageId(domain: "example.com"))
    }

    @Test func boundariesNeverOccurInsideAPart() throws {
        // The first boundary the writer offers appears in the text; it must pick another.
        let counter = Counter()
        let writer = MIMEWriter { counter.next() == 1 ? "clash" : "fresh\(counter.next())" }
        let message = try MailMessage(
            from: try MailAddress("a@example.com"), to: [try MailAddress("b@example.com")], subject: "s", text: "--clash", html: "<p>x</p>")
        let output = String(decoding: writer.write(message, messageId: "<x@example.com>", date: Self.date), as: UTF8.self)
        #expect(!output.contains("boundary=\"clash\""))
    }

    // MARK: SMTP framing

    @Test func dotStuffsAndNormalisesTheDataSection() {
        let data = SMTPData.encode(Array("a\n.b\r\n..c\rd\r\n.".utf8))
        #expect(String(buffer: data) == "a\r\n..b\r\n...c\r\nd\r\n..\r\n.\r\n")
        #expect(String(buffer: SMTPData.encode(Array("x\r\n".utf8))) == "x\r\n.\r\n")
    }

    @Test func parsesSingleAndMultiLineRepliesAcrossReads() throws {
        var parser = SMTPReplyParser()
        #expect(try parser.feed(Array("250-mail.example.com Hello\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LO".utf8)).isEmpty)
        #expect(parser.hasPartialInput)
        let replies = try parser.feed(Array("GIN\r\n250-AUTH=LOGIN\r\n250 STARTTLS\r\n221 bye\n".utf8))
        #expect(replies.count == 2)
        #expect(replies[0] == SMTPReply(code: 250, lines: ["mail.example.com Hello", "SIZE 10240000", "AUTH PLAIN LOGIN", "AUTH=LOGIN", "STARTTLS"]))
        #expect(replies[1] == SMTPReply(code: 221, lines: ["bye"]))
        #expect(!parser.hasPartialInput)
        let capabilities = SMTPCapabilities(ehlo: replies[0])
        #expect(capabilities.supports("STARTTLS") && capabilities.supports("AUTH"))
        #expect(capabilities.authMechanisms == ["PLAIN", "LOGIN"])
        #expect(capabilities.sizeLimit == 10_240_000)
        var bare = SMTPReplyParser()
        #expect(try bare.feed(Array("354\r\n".utf8)) == [SMTPReply(code: 354, lines: [""])])
    }

    @Test func refusesMalformedReplies() {
        var parser = SMTPReplyParser()
        #expect(throws: SMTPWireError.self) { try parser.feed(Array("HTTP/1.1 400 Bad Request\r\n".utf8)) }
        var mixed = SMTPReplyParser()
        #expect(throws: SMTPWireError.self) { try mixed.feed(Array("250-one\r\n550 two\r\n".utf8)) }
        var long = SMTPReplyParser()
        #expect(throws: SMTPWireError.replyTooLong) { try long.feed(Array(repeating: UInt8(ascii: "2"), count: 5000)) }
        var separator = SMTPReplyParser()
        #expect(throws: SMTPWireError.self) { try separator.feed(Array("250xok\r\n".utf8)) }
    }

    @Test func readsQueueIdsFromFinalReplies() {
        #expect(SMTPTransport.queueId(SMTPReply(code: 250, lines: ["2.0.0 Ok: queued as 4Vb1Xy2Kz"])) == "4Vb1Xy2Kz")
        #expect(SMTPTransport.queueId(SMTPReply(code: 250, lines: ["Ok 0100018f-aaaa-bbbb-cccc-000000000000-000000"])) != nil)
        #expect(SMTPTransport.queueId(SMTPReply(code: 250, lines: ["OK"])) == nil)
    }
}

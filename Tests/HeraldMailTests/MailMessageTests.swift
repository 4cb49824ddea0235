import Foundation
import Testing

@testable import HeraldMail

/// Addresses, headers and messages are checked when made, so nothing a caller passes can add a header or an
/// SMTP command.
@Suite struct MailMessageTests {
    @Test func parsesTheUsualForms() throws {
        let plain = try MailAddress.parse("reports@example.com")
        #expect(plain.address == "reports@example.com" && plain.name == nil)
        let named = try MailAddress.parse("Herald <reports@example.com>")
        #expect(named.address == "reports@example.com" && named.name == "Herald")
        let quoted = try MailAddress.parse("\"Herald, \\\"Reports\\\"\" <reports@mail.example.com>")
        #expect(quoted.name == "Herald, \"Reports\"" && quoted.domain == "mail.example.com")
        #expect(try MailAddress("first.last+tag@localhost").domain == "localhost")
    }

    @Test(arguments: [
        "ops@example.com\r\nRCPT TO:<attacker@evil.example>",
        "ops@example.com>\r\nDATA",
        "ops@example.com\nBcc: attacker@evil.example",
        "<ops@example.com> SIZE=1",
        "ops@example.com SIZE=1",
        "ops@exa mple.com",
        "ops@example.com\u{0}",
        "opsexample.com",
        "ops@@example.com",
        "ops..x@example.com",
        ".ops@example.com",
        "ops@-example.com",
        "ops@exam_ple.com",
        "ops@",
        "@example.com",
        "jörg@example.com",
        "ops@exämple.com",
        "\"quoted\"@example.com",
        "",
    ])
    func refusesAddressesThatCouldInjectOrAreInvalid(_ text: String) {
        let error = #expect(throws: MailError.self) { try MailAddress(text) }
        #expect(error?.kind == .permanent)
        #expect(error?.message.contains("\r") == false && error?.message.contains("\n") == false)
    }

    @Test func errorsSayWhatIsWrongWithControlCharactersEscaped() throws {
        let error = #expect(throws: MailError.self) { try MailAddress("ops@example.com\r\nRCPT TO:<x@evil.example>") }
        #expect(error?.message == #"invalid address "ops@example.com\r\nRCPT TO:<x@evil.example>": it contains a line break"#)
        let long = String(repeating: "a", count: 65) + "@example.com"
        #expect(throws: MailError.permanent("invalid address \"\(long)\": the part before @ must be 1 to 64 characters")) { try MailAddress(long) }
        #expect(
            throws: MailError.permanent(
                "invalid address \"jörg@example.com\": only ASCII addresses are supported (internationalised addresses need SMTPUTF8)")
        ) { try MailAddress("jörg@example.com") }
    }

    @Test func refusesDisplayNamesWithLineBreaks() {
        #expect(throws: MailError.self) { try MailAddress("ops@example.com", name: "Ops\r\nBcc: attacker@evil.example") }
        #expect(throws: MailError.self) { try MailAddress.parse("Ops\nBcc: x@evil.example <ops@example.com>") }
        #expect(throws: MailError.self) { try MailAddress.parse("Ops <ops@example.com> trailing") }
        #expect(throws: MailError.self) { try MailAddress("ops@example.com", name: "Line\u{2028}separator") }
    }

    @Test func checksExtraHeaders() throws {
        let header = try MailHeader("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        #expect(header.name == "List-Unsubscribe-Post")
        #expect(throws: MailError.self) { try MailHeader("X-Campaign", "a\r\nBcc: attacker@evil.example") }
        #expect(throws: MailError.self) { try MailHeader("X-Campaign", "a\nb") }
        #expect(throws: MailError.self) { try MailHeader("X Campaign", "a") }
        #expect(throws: MailError.self) { try MailHeader("X-Campaign:", "a") }
        #expect(throws: MailError.self) { try MailHeader("", "a") }
        #expect(throws: MailError.permanent("the Bcc header is written by Herald and cannot be set as an extra header")) {
            try MailHeader("Bcc", "attacker@evil.example")
        }
        #expect(throws: MailError.self) { try MailHeader("content-type", "text/html") }
        #expect(throws: MailError.self) { try MailHeader("X-Long", String(repeating: "a", count: 901)) }
    }

    @Test func checksAttachments() throws {
        _ = try MailAttachment(fileName: "report.csv", contentType: "text/csv; charset=utf-8", bytes: [1, 2])
        _ = try MailAttachment(fileName: "Übersicht Mai.pdf", contentType: "application/pdf", data: Data([1]))
        #expect(throws: MailError.self) { try MailAttachment(fileName: "a\r\nContent-Type: text/html", contentType: "text/plain", bytes: []) }
        #expect(throws: MailError.self) { try MailAttachment(fileName: "../etc/passwd", contentType: "text/plain", bytes: []) }
        #expect(throws: MailError.self) { try MailAttachment(fileName: "a.txt", contentType: "text/plain\r\nX-Injected: 1", bytes: []) }
        #expect(throws: MailError.self) { try MailAttachment(fileName: "a.txt", contentType: "text", bytes: []) }
        #expect(throws: MailError.self) { try MailAttachment(fileName: "a.txt", contentType: "text/plain; name=\"a", bytes: []) }
        #expect(throws: MailError.self) { try MailAttachment(fileName: " ", contentType: "text/plain", bytes: []) }
    }

    @Test func checksTheMessage() throws {
        let from = try MailAddress("reports@example.com")
        let to = try MailAddress("ops@example.com")
        #expect(throws: MailError.permanent("a message needs at least one recipient")) {
            try MailMessage(from: from, to: [], subject: "s", text: "t")
        }
        #expect(throws: MailError.self) { try MailMessage(from: from, to: [to], subject: "Report\r\nBcc: x@evil.example", text: "t") }
        #expect(throws: MailError.self) { try MailMessage(from: from, to: [to], subject: "   ", text: "t") }
        #expect(throws: MailError.permanent("a message needs a plain-text body")) { try MailMessage(from: from, to: [to], subject: "s", text: "\n") }
        let many = try (0...MailMessage.maximumRecipients).map { try MailAddress("user\($0)@example.com") }
        #expect(throws: MailError.self) { try MailMessage(from: from, to: many, subject: "s", text: "t") }
        #expect(throws: MailError.self) {
            try MailMessage(from: from, to: [to], subject: "s", text: "t", headers: [try MailHeader("X-A", "1"), try MailHeader("x-a", "2")])
        }
        let deduplicated = try MailMessage(from: from, to: [to, try MailAddress("OPS@example.com", name: "Ops")], subject: "s", text: "t", html: " ")
        #expect(deduplicated.to == [to])
        #expect(deduplicated.html == nil)
    }

    @Test func errorsSayWhetherRetryingHelps() {
        let transient = MailError.transient("the SMTP server mail.example.com:587 did not answer", retryAfter: 2.5, code: 421)
        #expect(transient.isTransient)
        #expect(transient.description == "temporary mail failure: the SMTP server mail.example.com:587 did not answer (retry after 3 s)")
        #expect(!MailError.permanent("x").isTransient)
    }

    @Test func disabledAndInMemoryTransports() async throws {
        let message = try richMessage()
        let error = await #expect(throws: MailError.self) { try await DisabledMailTransport().send(message) }
        #expect(error?.kind == .permanent)
        #expect(error?.message.contains("mail is not configured: set HERALD_MAIL_URL") == true)

        let memory = InMemoryMailTransport()
        let receipt = try await memory.send(message)
        #expect(receipt.providerMessageId == "memory-1")
        #expect(memory.messages == [message])
        memory.failNextSends(with: .transient("down"))
        await #expect(throws: MailError.transient("down")) { try await memory.send(message) }
    }
}

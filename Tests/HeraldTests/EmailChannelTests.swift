import Foundation
import HeraldCore
import HeraldSecurity
import Testing

@testable import NotificationsService

@Suite("Email channel: unsubscribe links, retries, plain text")
struct EmailChannelTests {
    @Test func unsubscribeLinksCannotBeMadeUpOrRedirected() throws {
        let cipher = FieldCipher(keyRing: try KeyRing.generate())
        let organization = UUID()
        let recipient = UUID()
        let token = UnsubscribeToken.make(organizationId: organization, recipientId: recipient, cipher: cipher)
        let parsed = try #require(UnsubscribeToken.parse(token, cipher: cipher))
        #expect(parsed.organizationId == organization && parsed.recipientId == recipient)
        // A mail client may change the case of the ids; the hash must stay as sent.
        #expect(UnsubscribeToken.parse(token.uppercasedIds, cipher: cipher)?.recipientId == recipient)
        let parts = token.split(separator: ".").map(String.init)
        #expect(UnsubscribeToken.parse("\(parts[0]).\(UUID().lowercased).\(parts[2])", cipher: cipher) == nil)
        #expect(UnsubscribeToken.parse("\(UUID().lowercased).\(parts[1]).\(parts[2])", cipher: cipher) == nil)
        #expect(UnsubscribeToken.parse("\(parts[0]).\(parts[1]).\(String(parts[2].reversed()))", cipher: cipher) == nil)
        #expect(UnsubscribeToken.parse(token, cipher: FieldCipher(keyRing: try KeyRing.generate())) == nil)
        for bad in ["", "..", "a.b.c", token + ".x", String(token.dropLast())] {
            #expect(UnsubscribeToken.parse(bad, cipher: cipher) == nil, "\(bad)")
        }
    }

    @Test func retriesBackOffToTwoHours() {
        #expect((1...7).map { ChannelSender<EmailTransport>.backoff(attempt: $0) } == [30, 120, 480, 1920, 7200, 7200, 7200])
    }

    @Test func renderedMessagesBecomePlainText() {
        let runs: [RenderedText.Run] = [.text(" Sarah from Austin bought a kite "), .timeAgo(Date()), .text("\u{7}")]
        #expect(ChannelFanout.plainText(runs) == "Sarah from Austin bought a kite just now")
    }
}

extension String {
    fileprivate var uppercasedIds: String {
        let parts = split(separator: ".", omittingEmptySubsequences: false)
        return "\(parts[0].uppercased()).\(parts[1].uppercased()).\(parts[2])"
    }
}

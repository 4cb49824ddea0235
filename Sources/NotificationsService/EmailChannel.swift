import Foundation
import HeraldCore
import HeraldMail
import HeraldSecurity
import HeraldStorage

/// The email channel's settings (docs/CHANNELS.md).
public struct EmailChannelOptions: Sendable {
    /// The shared mail transport (SMTP or SendGrid); the channel cannot be enabled without one.
    public var mail: any MailTransport = DisabledMailTransport()
    public var from: MailAddress?
    /// Where recipients reach Herald, for the unsubscribe link.
    public var publicBaseURL = "http://localhost:8080"
    /// Emails a site may send per rolling hour; more wait for the window (`HERALD_EMAIL_PER_SITE_PER_HOUR`).
    public var perSitePerHour = 100
    /// Subscribed recipients a site may have.
    public var maxRecipientsPerSite = 10_000
    /// SendGrid's signed Event Webhook (`HERALD_SENDGRID_EVENT_KEY`): its bounces, drops, spam reports and
    /// unsubscribes reach the recipients at `POST /email/events/sendgrid`.
    public var sendGridEvents: SendGridEventWebhook?

    public init() {}

    var isAvailable: Bool { from != nil && !(mail is DisabledMailTransport) }
}

/// The link in every email that unsubscribes its recipient in one click (RFC 8058). It names the organization and
/// the recipient and carries a keyed hash of both, so it cannot be made up or pointed at someone else.
enum UnsubscribeToken {
    static func make(organizationId: UUID, recipientId: UUID, cipher: FieldCipher) -> String {
        let mac = cipher.blindIndex("\(organizationId.lowercased):\(recipientId.lowercased)", purpose: "email-unsubscribe")
        return "\(organizationId.lowercased).\(recipientId.lowercased).\(Base64URL.encode(mac.prefix(16)))"
    }

    static func parse(_ token: String, cipher: FieldCipher) -> (organizationId: UUID, recipientId: UUID)? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let organizationId = UUID(uuidString: String(parts[0])), let recipientId = UUID(uuidString: String(parts[1])) else {
            return nil
        }
        let expected = make(organizationId: organizationId, recipientId: recipientId, cipher: cipher)
        guard SecretToken.constantTimeEquals(Array(expected.utf8), Array(token.lowercasedUUIDParts.utf8)) else { return nil }
        return (organizationId, recipientId)
    }
}

extension String {
    /// The token with its two UUIDs in lower case (a mail client may change their case), the hash as sent.
    fileprivate var lowercasedUUIDParts: String {
        let parts = split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return self }
        return "\(parts[0].lowercased()).\(parts[1].lowercased()).\(parts[2])"
    }
}

/// Email through the shared mail transport (SMTP or SendGrid), with RFC 8058 one-click unsubscribe. A refusal of
/// the address itself (SMTP 550–553) marks the recipient bounced, so no later email goes to it.
struct EmailTransport: ChannelTransport {
    let recipients: EmailRecipientStore
    let options: EmailChannelOptions
    let cipher: FieldCipher
    var deliveries: ChannelDeliveryStore { .email }
    var perSitePerHour: Int { options.perSitePerHour }

    func target(_ id: UUID, in tx: any SQLExecutor) async throws -> Result<EmailRecipient, SkipReason> {
        guard let recipient = try await recipients.findRecipient(id, in: tx) else {
            return .failure(SkipReason(message: "not sent: the recipient was removed"))
        }
        guard recipient.status == "subscribed" else { return .failure(SkipReason(message: "not sent: the recipient \(recipient.status)")) }
        return .success(recipient)
    }

    func send(_ delivery: ChannelDelivery, to recipient: EmailRecipient, organizationId: UUID, siteName: String) async -> ChannelOutcome {
        do {
            let receipt = try await options.mail.send(try message(delivery, to: recipient, organizationId: organizationId, siteName: siteName))
            return .sent(providerMessageId: receipt.providerMessageId ?? receipt.messageId)
        } catch let error as MailError {
            if error.isTransient { return .retry(error.message, after: error.retryAfter) }
            return .failed(error.message, endsTarget: error.code.map { (550...553).contains($0) } ?? false)
        } catch {
            return .retry("\(error)", after: nil)
        }
    }

    func end(_ recipient: EmailRecipient, reason: String, in tx: any SQLExecutor) async throws {
        _ = try await recipients.setRecipientStatus(
            recipient.id, status: "bounced", reason: "the mail server refused the address: \(reason)", now: Date(), in: tx)
    }

    func message(_ delivery: ChannelDelivery, to recipient: EmailRecipient, organizationId: UUID, siteName: String) throws -> MailMessage {
        guard let from = options.from else { throw MailError.permanent("no sender address is configured (HERALD_MAIL_FROM)") }
        let token = UnsubscribeToken.make(organizationId: organizationId, recipientId: recipient.id, cipher: cipher)
        let unsubscribe = "\(options.publicBaseURL)/email/unsubscribe/\(token)"
        let text = """
            \(delivery.body)

            --
            You receive this because you asked \(siteName) for updates by email.
            Unsubscribe: \(unsubscribe)

            """
        return try MailMessage(
            from: from, to: [try MailAddress(recipient.email)], subject: delivery.title, text: text,
            headers: [
                try MailHeader("List-Unsubscribe", "<\(unsubscribe)>"),
                try MailHeader("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ],
            // SendGrid reports these back with its events, which names the recipient of a bounce.
            tags: [
                EmailEvents.organizationTag: organizationId.lowercased, EmailEvents.recipientTag: recipient.id.lowercased,
                EmailEvents.deliveryTag: delivery.id.lowercased,
            ]
        )
    }
}

/// What SendGrid's events mean for a recipient, and the tags every email carries so an event names its recipient.
enum EmailEvents {
    static let organizationTag = "herald_organization"
    static let recipientTag = "herald_recipient"
    static let deliveryTag = "herald_delivery"
    static let maxBody = 1 << 20
    static let maxEvents = 1000

    /// The recipient's new status for an event, or nil when the event changes nothing.
    static func outcome(of event: [String: JSONValue]) -> (status: String, reason: String)? {
        let reason = event["reason"]?.stringValue.map { String($0.prefix(300)).removingControlCharacters } ?? ""
        switch event["event"]?.stringValue {
        case "bounce":
            // A "blocked" bounce is the receiving server's temporary refusal (reputation, rate): the address is fine.
            guard event["type"]?.stringValue != "blocked" else { return nil }
            return ("bounced", "SendGrid: the address bounced" + (reason.isEmpty ? "" : " (\(reason))"))
        case "dropped":
            if reason.localizedCaseInsensitiveContains("unsubscribed") || reason.localizedCaseInsensitiveContains("spam") {
                return ("unsubscribed", "SendGrid dropped the email: \(reason)")
            }
            if reason.localizedCaseInsensitiveContains("bounced") || reason.localizedCaseInsensitiveContains("invalid") {
                return ("bounced", "SendGrid dropped the email: \(reason)")
            }
            return nil
        case "spamreport":
            return ("unsubscribed", "the recipient marked an email as spam")
        case "unsubscribe", "group_unsubscribe":
            return ("unsubscribed", "the recipient unsubscribed at SendGrid")
        default:
            return nil
        }
    }
}

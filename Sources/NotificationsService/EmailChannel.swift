import Crypto
import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldMail
import HeraldSecurity
import HeraldStorage
import Logging
import Metrics
import ServiceLifecycle

/// The email channel's settings (docs/CHANNELS.md).
public struct EmailChannelOptions: Sendable {
    /// The shared mail transport (SMTP or SendGrid); the channel cannot be enabled without one.
    public var mail: any MailTransport = DisabledMailTransport()
    public var from: MailAddress?
    /// Where recipients reach Herald, for the unsubscribe link.
    public var publicBaseURL = "http://localhost:8080"
    /// Emails a site may send per rolling hour; more wait for the window (`HERALD_EMAIL_PER_SITE_PER_HOUR`).
    public var perSitePerHour = 100
    /// Sends tried before a delivery fails for good.
    public var maxAttempts = 6
    /// Subscribed recipients a site may have.
    public var maxRecipientsPerSite = 10_000
    /// Only activities this recent go out by email (an import of last year's orders mails no one).
    public var freshness: TimeInterval = 3600
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
        return "\(organizationId.lowercased).\(recipientId.lowercased).\(Data(mac.prefix(16)).base64URLEncoded)"
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

extension Data {
    fileprivate var base64URLEncoded: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// Turns a new activity into one email per subscribed recipient for each published notification that shows it and
/// has email on, in the transaction that stores the activity: a redelivered event adds nothing.
struct EmailFanout: Sendable {
    let store: EmailChannelStore
    let options: EmailChannelOptions
    let notifications = NotificationStore()
    let sites = SiteStore()
    let holds = DeliveryHoldStore()

    /// The number of emails queued.
    func fanOut(_ activity: ActivityCaptured, organizationId: UUID, now: Date, in tx: any SQLExecutor) async throws -> Int {
        guard options.isAvailable, activity.occurredAt >= now.addingTimeInterval(-options.freshness) else { return 0 }
        let enabled = try await store.enabledSettings(siteId: activity.siteId, in: tx)
        guard !enabled.isEmpty else { return 0 }
        // Billing paused the organization's popups: emails pause with them.
        if let hold = try await holds.find(organizationId: organizationId, in: tx), hold.paused { return 0 }
        guard let site = try await sites.find(activity.siteId, in: tx) else { return 0 }
        let subjects = Dictionary(enabled.map { ($0.notificationId, $0.subject) }, uniquingKeysWith: { first, _ in first })
        let record = ActivityRecord(
            id: activity.activityId, siteId: activity.siteId, type: activity.type, firstName: activity.firstName, city: activity.city,
            region: activity.region, country: activity.country, productName: activity.productName, productUrl: activity.productUrl,
            imageUrl: activity.imageUrl, rating: activity.rating, occurredAt: activity.occurredAt, provenance: activity.provenance
        )
        let values = FeedBuilder.values(for: record, site: site)
        var recipients: [UUID]?
        var queued = 0
        for notification in try await notifications.published(siteId: activity.siteId, in: tx) {
            guard notification.type == .recentActivity, let subjectSource = subjects[notification.id] else { continue }
            let content = notification.content.completed(for: notification.type)
            guard content.activityTypes?.contains(activity.type) ?? true else { continue }
            let templates = try await FeedBuilder().resolveTemplates(notification, in: tx)
            let body = Self.plainText(templates.main.render(values).runs)
            let subject = Self.plainText(((try? MessageTemplate(subjectSource)) ?? templates.main).render(values).runs)
            guard !body.isEmpty, !subject.isEmpty else { continue }
            if recipients == nil { recipients = try await store.subscribedRecipientIds(siteId: activity.siteId, in: tx) }
            for recipientId in recipients ?? [] {
                let delivery = EmailDelivery(
                    id: UUID.v7(), siteId: activity.siteId, notificationId: notification.id, activityId: activity.activityId,
                    recipientId: recipientId, subject: String(subject.prefix(300)), body: body, status: "pending", attempts: 0, createdAt: now
                )
                if try await store.insertDelivery(delivery, organizationId: organizationId, in: tx) {
                    try await store.enqueue(delivery.id, organizationId: organizationId, at: now, in: tx)
                    queued += 1
                }
            }
        }
        return queued
    }

    /// A rendered message as plain text: relative times become "just now" (the email goes out at once).
    static func plainText(_ runs: [RenderedText.Run]) -> String {
        runs.map { run in
            switch run {
            case .text(let text): text
            case .timeAgo: "just now"
            case .live: ""
            case .livePlural(_, let other): other
            }
        }.joined().trimmingCharacters(in: .whitespacesAndNewlines).removingControlCharacters
    }
}

/// Sends due emails: checks the recipient is still subscribed and the site within its hourly limit, hands the
/// message to the mail transport, records the outcome, and schedules a retry with backoff or gives up. A refusal of
/// the address itself (SMTP 550–553) marks the recipient bounced, so no later email goes to it.
final class EmailSender: Service, Sendable {
    let database: any Database
    let store: EmailChannelStore
    let options: EmailChannelOptions
    let cipher: FieldCipher
    let logger: Logger
    let signal = WakeSignal()
    let sent = Counter(label: "herald_channel_deliveries_total", dimensions: [("channel", "email"), ("outcome", "sent")])
    let failed = Counter(label: "herald_channel_deliveries_total", dimensions: [("channel", "email"), ("outcome", "failed")])
    static let parallel = 4

    init(database: any Database, store: EmailChannelStore, options: EmailChannelOptions, cipher: FieldCipher, logger: Logger) {
        self.database = database
        self.store = store
        self.options = options
        self.cipher = cipher
        self.logger = logger
    }

    func wake() { signal.signalAll() }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let worked = (try? await self.sendDue()) ?? false
                if !worked { await self.signal.wait(timeout: .seconds(1)) }
            }
        }
    }

    /// Claims a batch of due deliveries and sends them, a few at a time.
    func sendDue(now: Date = Date()) async throws -> Bool {
        let due = try await database.transaction(.system) { tx in
            try await store.claimDue(now: now, limit: Self.parallel * 4, in: tx)
        }
        guard !due.isEmpty else { return false }
        await withTaskGroup(of: Void.self) { group in
            var iterator = due.makeIterator()
            for _ in 0..<Self.parallel {
                guard let next = iterator.next() else { break }
                group.addTask { await self.deliver(next.deliveryId, organizationId: next.organizationId) }
            }
            while await group.next() != nil {
                if let next = iterator.next() { group.addTask { await self.deliver(next.deliveryId, organizationId: next.organizationId) } }
            }
        }
        return true
    }

    func deliver(_ deliveryId: UUID, organizationId: UUID) async {
        do {
            try await attempt(deliveryId, organizationId: organizationId)
        } catch {
            logger.warning("email delivery step failed", metadata: ["delivery": "\(deliveryId)", "error": "\(error)"])
        }
    }

    /// What the sender decided before sending.
    private enum Plan {
        case done
        case send(EmailDelivery, EmailRecipient, siteName: String)
    }

    private func attempt(_ deliveryId: UUID, organizationId: UUID) async throws {
        let scope = TenantScope.organization(organizationId)
        let now = Date()
        let plan = try await database.transaction(scope) { tx -> Plan in
            guard let delivery = try await store.findDelivery(deliveryId, in: tx), delivery.status == "pending" else {
                try await store.dequeue(deliveryId, in: tx)
                return .done
            }
            guard let recipient = try await store.findRecipient(delivery.recipientId, in: tx), recipient.status == "subscribed" else {
                let reason = "not sent: the recipient \(try await store.findRecipient(delivery.recipientId, in: tx)?.status ?? "was removed")"
                try await store.markEnded(deliveryId, status: "skipped", error: reason, attempted: false, in: tx)
                try await store.dequeue(deliveryId, in: tx)
                return .done
            }
            // The site's hourly limit: wait for the window to free a place rather than drop the email.
            let window = try await store.sentSince(siteId: delivery.siteId, since: now.addingTimeInterval(-3600), in: tx)
            if window.count >= options.perSitePerHour {
                let next = max(now.addingTimeInterval(1), (window.earliest ?? now).addingTimeInterval(3600 + 1))
                try await store.markRetry(
                    deliveryId, error: "waiting: the site sent its \(options.perSitePerHour) emails of the last hour", next: next, attempted: false,
                    in: tx
                )
                try await store.enqueue(deliveryId, organizationId: organizationId, at: next, in: tx)
                return .done
            }
            let siteName = try await SiteStore().find(delivery.siteId, in: tx)?.name ?? "this site"
            return .send(delivery, recipient, siteName: siteName)
        }
        guard case .send(let delivery, let recipient, let siteName) = plan else { return }

        var outcome: Result<MailReceipt, MailError>
        do {
            let message = try message(delivery, to: recipient, organizationId: organizationId, siteName: siteName)
            outcome = .success(try await options.mail.send(message))
        } catch let error as MailError {
            outcome = .failure(error)
        } catch {
            outcome = .failure(.transient("\(error)"))
        }
        try await database.transaction(scope) { tx in
            switch outcome {
            case .success(let receipt):
                try await store.markSent(deliveryId, providerMessageId: receipt.providerMessageId ?? receipt.messageId, now: Date(), in: tx)
                try await store.dequeue(deliveryId, in: tx)
                sent.increment()
            case .failure(let error) where error.isTransient && delivery.attempts + 1 < options.maxAttempts:
                let next = Date().addingTimeInterval(max(error.retryAfter ?? 0, Self.backoff(attempt: delivery.attempts + 1)))
                try await store.markRetry(deliveryId, error: error.message, next: next, attempted: true, in: tx)
                try await store.enqueue(deliveryId, organizationId: organizationId, at: next, in: tx)
                failed.increment()
            case .failure(let error):
                try await store.markEnded(deliveryId, status: "failed", error: error.message, attempted: true, in: tx)
                try await store.dequeue(deliveryId, in: tx)
                if let code = error.code, (550...553).contains(code) {
                    _ = try await store.setRecipientStatus(
                        recipient.id, status: "bounced", reason: "the mail server refused the address: \(error.message)", now: Date(), in: tx
                    )
                }
                failed.increment()
            }
        }
    }

    /// 30 s, 2 min, 8 min, 32 min, then about 2 hours.
    static func backoff(attempt: Int) -> TimeInterval {
        min(30 * pow(4, Double(max(0, attempt - 1))), 7200)
    }

    func message(_ delivery: EmailDelivery, to recipient: EmailRecipient, organizationId: UUID, siteName: String) throws -> MailMessage {
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
            from: from, to: [try MailAddress(recipient.email)], subject: delivery.subject, text: text,
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

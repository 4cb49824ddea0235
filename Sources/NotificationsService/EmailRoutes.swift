import Foundation
import HTTPTypes
import HeraldCore
import HeraldHTTP
import HeraldMail
import HeraldModules
import HeraldSecurity
import HeraldStorage
import Hummingbird
import Logging

struct EmailRecipientBody: Encodable, Sendable {
    var id: UUID
    var email: String
    var status: String
    var statusReason: String?
    var createdAt: Date
    var updatedAt: Date

    init(_ recipient: EmailRecipient) {
        id = recipient.id
        email = recipient.email
        status = recipient.status
        statusReason = recipient.statusReason
        createdAt = recipient.createdAt
        updatedAt = recipient.updatedAt
    }
}

extension NotificationsService {
    func addEmailRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        let site = router.group("sites/:siteId")
        site.get("email/recipients", use: listEmailRecipients)
        site.post("email/recipients", use: addEmailRecipient)
        site.delete("email/recipients/:recipientId", use: removeEmailRecipient)
        router.get("email/unsubscribe/:token", use: unsubscribePage)
        router.post("email/unsubscribe/:token", use: unsubscribe)
        router.post("email/events/sendgrid", use: receiveSendGridEvents)
    }

    // MARK: Recipients

    @Sendable func listEmailRecipients(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<EmailRecipientBody>> {
        let grant = try await access.site(from: context, .contentRead)
        let limit = try request.limit(default: 50, max: 200)
        let before = try Self.cursor(request)
        let records = try await database.transaction(grant.scope) {
            try await emailRecipients.listRecipients(siteId: grant.siteId, before: before, limit: limit, in: $0)
        }
        let next = records.count == limit ? records.last.map { TimeCursor(date: $0.createdAt, id: $0.id).text } : nil
        return JSONResponse(Page(items: records.map(EmailRecipientBody.init), nextCursor: next))
    }

    /// Adds someone who asked the site for updates by email. Adding an address again answers the existing
    /// recipient; an address that unsubscribed or bounced is not subscribed again by the site owner.
    @Sendable func addEmailRecipient(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let grant = try await access.site(from: context, .contentWrite)
        var reader = try await BodyReader(request: request, context: context)
        let email = reader.validator.requireEmail(reader.string("email"))
        try reader.validator.check()
        let meta = RequestMeta(request: request, context: context)
        let (recipient, created) = try await database.transaction(grant.scope) { tx -> (EmailRecipient, Bool) in
            if let existing = try await emailRecipients.findRecipient(email: email, siteId: grant.siteId, in: tx) {
                guard existing.status == "subscribed" else {
                    throw HeraldError.conflict(
                        existing.status == "bounced"
                            ? "Mail to this address bounced (\(existing.statusReason ?? "the server refused it")); remove the recipient and add it again once the address works."
                            : "This person unsubscribed from the site's emails; only they can ask for them again.",
                        slug: "recipient-\(existing.status)"
                    )
                }
                return (existing, false)
            }
            let count = try await emailRecipients.countSubscribed(siteId: grant.siteId, in: tx)
            guard count < self.email.maxRecipientsPerSite else {
                throw HeraldError.conflict(
                    "The site has \(count) email recipients, the most it may have (\(self.email.maxRecipientsPerSite)); remove some first.",
                    slug: "too-many-recipients"
                )
            }
            let id = UUID.v7()
            let now = Date()
            try await emailRecipients.insertRecipient(
                id: id, email: email, siteId: grant.siteId, organizationId: grant.organizationId, now: now, in: tx)
            try await AuditTrail.record("email_recipient.added", target: "email_recipient", id, by: grant, meta: meta, in: tx)
            return (EmailRecipient(id: id, siteId: grant.siteId, email: email, status: "subscribed", createdAt: now, updatedAt: now), true)
        }
        return try JSONResponse(EmailRecipientBody(recipient), status: created ? .created : .ok).response(from: request, context: context)
    }

    @Sendable func removeEmailRecipient(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let grant = try await access.site(from: context, .contentWrite)
        let id = try context.uuidParameter("recipientId", resource: "Email recipient")
        let meta = RequestMeta(request: request, context: context)
        let removed = try await database.transaction(grant.scope) { tx in
            guard try await emailRecipients.deleteRecipient(id, siteId: grant.siteId, in: tx) else { return false }
            try await AuditTrail.record("email_recipient.removed", target: "email_recipient", id, by: grant, meta: meta, in: tx)
            return true
        }
        guard removed else { throw HeraldError.notFound("Email recipient \(id.lowercased)") }
        return Response(status: .noContent)
    }

    // MARK: Unsubscribing (public: the link in every email)

    /// A page with one button: opening a link must not unsubscribe (mail scanners open links), a POST does (RFC 8058).
    @Sendable func unsubscribePage(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let token = try unsubscribeToken(context)
        let status = try await database.transaction(.organization(token.organizationId)) {
            try await emailRecipients.findRecipient(token.recipientId, in: $0)?.status
        }
        guard let status else { throw Self.unknownLink }
        let escaped = (context.parameters.get("token") ?? "").htmlEscaped
        let content =
            status == "subscribed"
            ? """
            <h1>Unsubscribe</h1><p>Stop receiving these emails?</p>
            <form method="post" action="/email/unsubscribe/\(escaped)"><button type="submit">Unsubscribe</button></form>
            """
            : "<h1>You are unsubscribed</h1><p>No more emails will be sent to this address.</p>"
        return Self.page(content)
    }

    @Sendable func unsubscribe(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let token = try unsubscribeToken(context)
        let found = try await database.transaction(.organization(token.organizationId)) { tx -> Bool in
            guard let recipient = try await emailRecipients.findRecipient(token.recipientId, in: tx) else { return false }
            // A bounced address stays bounced; anyone else who follows their link is unsubscribed, once.
            if recipient.status == "subscribed" {
                _ = try await emailRecipients.setRecipientStatus(
                    recipient.id, status: "unsubscribed", reason: "the recipient followed the unsubscribe link", now: Date(), in: tx)
                try await AuditTrail.record(
                    "email_recipient.unsubscribed", target: "email_recipient", recipient.id.lowercased, organizationId: token.organizationId,
                    siteId: recipient.siteId, actorUserId: nil, meta: RequestMeta(request: request, context: context), in: tx
                )
            }
            return true
        }
        guard found else { throw Self.unknownLink }
        return Self.page("<h1>You are unsubscribed</h1><p>No more emails will be sent to this address.</p>")
    }

    // MARK: SendGrid's events

    /// SendGrid's signed Event Webhook: a hard bounce or a drop of a bad address marks the recipient bounced; a spam
    /// report or an unsubscribe at SendGrid unsubscribes them. Other events (delivered, opened, …) are ignored.
    @Sendable func receiveSendGridEvents(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        guard let verifier = email.sendGridEvents else {
            throw HeraldError.notFound("SendGrid's event webhook (not configured: HERALD_SENDGRID_EVENT_KEY)")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: EmailEvents.maxBody)
        } catch {
            throw HeraldError.payloadTooLarge(limit: EmailEvents.maxBody)
        }
        let body = Array(buffer.readableBytesView)
        let header = { (name: String) in HTTPField.Name(name).flatMap { request.headers[$0] } }
        if let problem = verifier.problem(
            signature: header(SendGridEventWebhook.signatureHeader), timestamp: header(SendGridEventWebhook.timestampHeader), body: body)
        {
            logger.warning("email: SendGrid event webhook refused", metadata: ["reason": "\(problem)"])
            throw HeraldError(
                status: 400, slug: "bad-signature", title: "Signature check failed", detail: "SendGrid event webhook refused: \(problem).")
        }
        guard let events = try? JSONDecoder().decode([[String: JSONValue]].self, from: Data(body)) else {
            throw HeraldError.badRequest("The body is not SendGrid's event list: expected a JSON array of event objects.")
        }
        var byOrganization: [UUID: [(recipientId: UUID, status: String, reason: String)]] = [:]
        for event in events.prefix(EmailEvents.maxEvents) {
            guard let outcome = EmailEvents.outcome(of: event), let organization = event[EmailEvents.organizationTag]?.stringValue,
                let organizationId = UUID(text: organization), let recipient = event[EmailEvents.recipientTag]?.stringValue,
                let recipientId = UUID(text: recipient)
            else { continue }
            byOrganization[organizationId, default: []].append((recipientId, outcome.status, outcome.reason))
        }
        let meta = RequestMeta(request: request, context: context)
        for (organizationId, changes) in byOrganization {
            try await database.transaction(.organization(organizationId)) { tx in
                for change in changes {
                    // Only a subscribed recipient changes: a later event never resubscribes or un-bounces anyone.
                    guard let recipient = try await emailRecipients.findRecipient(change.recipientId, in: tx), recipient.status == "subscribed" else {
                        continue
                    }
                    _ = try await emailRecipients.setRecipientStatus(recipient.id, status: change.status, reason: change.reason, now: Date(), in: tx)
                    try await AuditTrail.record(
                        "email_recipient.\(change.status)", target: "email_recipient", recipient.id.lowercased, organizationId: organizationId,
                        siteId: recipient.siteId, actorUserId: nil, details: ["source": "sendgrid"], meta: meta, in: tx
                    )
                }
            }
        }
        return Response(status: .noContent)
    }

    func unsubscribeToken(_ context: HeraldRequestContext) throws -> (organizationId: UUID, recipientId: UUID) {
        guard let text = context.parameters.get("token"), text.utf8.count <= 200, let token = UnsubscribeToken.parse(text, cipher: cipher) else {
            throw Self.unknownLink
        }
        return token
    }

    static let unknownLink = HeraldError.notFound("This unsubscribe link is not valid (it may be cut short); the link")

    static func page(_ content: String) -> Response {
        let html = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Email preferences</title></head><body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem">
            \(content)</body></html>
            """
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: html))
        )
    }
}

extension String {
    fileprivate var htmlEscaped: String {
        var result = ""
        for character in self {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}

import Foundation
import HeraldCore
import HeraldSecurity
import HeraldStorage

/// Someone who opted in to a site's notifications by email.
struct EmailRecipient: Sendable {
    var id: UUID
    var siteId: UUID
    var email: String
    /// `subscribed`, `unsubscribed` (they left through the link in an email) or `bounced` (their server refused mail).
    var status: String
    var statusReason: String?
    var createdAt: Date
    var updatedAt: Date
}

/// A notification's email settings.
struct EmailSettings: Sendable, Equatable {
    var notificationId: UUID
    var enabled: Bool
    /// A message template (the notification's placeholders) for the subject.
    var subject: String
    var updatedAt: Date?
}

/// One email: an activity, as a notification renders it, to one recipient.
struct EmailDelivery: Sendable {
    var id: UUID
    var siteId: UUID
    var notificationId: UUID
    var activityId: UUID
    var recipientId: UUID
    var subject: String
    var body: String
    /// `pending`, `sent`, `failed` (retries exhausted or refused for good) or `skipped` (the recipient left first).
    var status: String
    var attempts: Int
    var nextAttemptAt: Date?
    var lastError: String?
    var providerMessageId: String?
    var createdAt: Date
    var sentAt: Date?
}

/// The email channel's recipients, settings, deliveries and the queue the sender claims across tenants.
struct EmailChannelStore: Sendable {
    typealias T = NotificationsTables
    let cipher: FieldCipher

    // MARK: Recipients

    func emailIndex(_ email: String, siteId: UUID) -> [UInt8] {
        cipher.blindIndex("\(siteId.lowercased):\(EmailAddress.normalize(email))", purpose: "email-recipient")
    }

    func findRecipient(email: String, siteId: UUID, in tx: any SQLExecutor) async throws -> EmailRecipient? {
        try await tx.queryFirst(
            "SELECT * FROM \(T.emailRecipients) WHERE site_id = \(siteId) AND email_index = \(emailIndex(email, siteId: siteId))"
        ).map(decodeRecipient)
    }

    func findRecipient(_ id: UUID, siteId: UUID? = nil, in tx: any SQLExecutor) async throws -> EmailRecipient? {
        let site: SQL = siteId.map { " AND site_id = \($0)" } ?? ""
        return try await tx.queryFirst("SELECT * FROM \(T.emailRecipients) WHERE id = \(id)\(site)").map(decodeRecipient)
    }

    func insertRecipient(id: UUID, email: String, siteId: UUID, organizationId: UUID, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.emailRecipients) (id, site_id, organization_id, email_index, email_encrypted, status, created_at, updated_at)
            VALUES (\(id), \(siteId), \(organizationId), \(emailIndex(email, siteId: siteId)),
                \(try cipher.encrypt(email, context: Self.emailContext(id))), 'subscribed', \(now), \(now))
            """
        )
    }

    func listRecipients(siteId: UUID, before: TimeCursor?, limit: Int, in tx: any SQLExecutor) async throws -> [EmailRecipient] {
        let cursor: SQL = before.map { "AND (created_at, id) < (\($0.date), \($0.id))" } ?? ""
        return try await tx.query(
            "SELECT * FROM \(T.emailRecipients) WHERE site_id = \(siteId) \(cursor) ORDER BY created_at DESC, id DESC LIMIT \(limit)"
        ).map(decodeRecipient)
    }

    func countSubscribed(siteId: UUID, in tx: any SQLExecutor) async throws -> Int {
        try await tx.queryFirst("SELECT COUNT(*) AS n FROM \(T.emailRecipients) WHERE site_id = \(siteId) AND status = 'subscribed'")?
            .get("n") ?? 0
    }

    func subscribedRecipientIds(siteId: UUID, in tx: any SQLExecutor) async throws -> [UUID] {
        try await tx.query("SELECT id FROM \(T.emailRecipients) WHERE site_id = \(siteId) AND status = 'subscribed' ORDER BY id")
            .map { try $0.get("id") }
    }

    /// Sets a recipient's status; false when there is no such recipient.
    func setRecipientStatus(_ id: UUID, status: String, reason: String?, now: Date, in tx: any SQLExecutor) async throws -> Bool {
        try await !tx.query(
            """
            UPDATE \(T.emailRecipients) SET status = \(status), status_reason = \(reason), updated_at = \(now)
            WHERE id = \(id) RETURNING id
            """
        ).isEmpty
    }

    func deleteRecipient(_ id: UUID, siteId: UUID, in tx: any SQLExecutor) async throws -> Bool {
        try await !tx.query("DELETE FROM \(T.emailRecipients) WHERE id = \(id) AND site_id = \(siteId) RETURNING id").isEmpty
    }

    static func emailContext(_ id: UUID) -> String { "notifications.email_recipients.email:\(id.lowercased)" }

    func decodeRecipient(_ row: SQLRow) throws -> EmailRecipient {
        let id: UUID = try row.get("id")
        return EmailRecipient(
            id: id, siteId: try row.get("site_id"), email: try cipher.decrypt(try row.get("email_encrypted"), context: Self.emailContext(id)),
            status: try row.get("status"), statusReason: try row.get("status_reason"), createdAt: try row.get("created_at"),
            updatedAt: try row.get("updated_at")
        )
    }

    // MARK: Settings

    func settings(notificationId: UUID, in tx: any SQLExecutor) async throws -> EmailSettings? {
        try await tx.queryFirst("SELECT * FROM \(T.emailSettings) WHERE notification_id = \(notificationId)").map(decodeSettings)
    }

    /// The notifications of a site whose new activities also go out by email.
    func enabledSettings(siteId: UUID, in tx: any SQLExecutor) async throws -> [EmailSettings] {
        try await tx.query("SELECT * FROM \(T.emailSettings) WHERE site_id = \(siteId) AND enabled = \(true)").map(decodeSettings)
    }

    func saveSettings(_ settings: EmailSettings, siteId: UUID, organizationId: UUID, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.emailSettings) (notification_id, site_id, organization_id, enabled, subject, updated_at)
            VALUES (\(settings.notificationId), \(siteId), \(organizationId), \(settings.enabled), \(settings.subject), \(now))
            ON CONFLICT (notification_id) DO UPDATE SET enabled = excluded.enabled, subject = excluded.subject, updated_at = excluded.updated_at
            """
        )
    }

    func decodeSettings(_ row: SQLRow) throws -> EmailSettings {
        EmailSettings(
            notificationId: try row.get("notification_id"), enabled: try row.get("enabled"), subject: try row.get("subject"),
            updatedAt: try row.get("updated_at")
        )
    }

    // MARK: Deliveries

    /// Records an email once per activity, notification and recipient (a redelivered event adds nothing); true when new.
    func insertDelivery(_ delivery: EmailDelivery, organizationId: UUID, in tx: any SQLExecutor) async throws -> Bool {
        try await !tx.query(
            """
            INSERT INTO \(T.emailDeliveries) (id, site_id, organization_id, notification_id, activity_id, recipient_id, subject, body, status,
                attempts, next_attempt_at, created_at)
            VALUES (\(delivery.id), \(delivery.siteId), \(organizationId), \(delivery.notificationId), \(delivery.activityId),
                \(delivery.recipientId), \(delivery.subject), \(delivery.body), 'pending', 0, \(delivery.createdAt), \(delivery.createdAt))
            ON CONFLICT (activity_id, notification_id, recipient_id) DO NOTHING RETURNING id
            """
        ).isEmpty
    }

    func findDelivery(_ id: UUID, in tx: any SQLExecutor) async throws -> EmailDelivery? {
        try await tx.queryFirst("SELECT * FROM \(T.emailDeliveries) WHERE id = \(id)").map(decodeDelivery)
    }

    func listDeliveries(
        siteId: UUID, notificationId: UUID?, status: String?, before: TimeCursor?, limit: Int, in tx: any SQLExecutor
    ) async throws -> [EmailDelivery] {
        var filters: SQL = ""
        if let notificationId { filters = filters + " AND notification_id = \(notificationId)" }
        if let status { filters = filters + " AND status = \(status)" }
        if let before { filters = filters + " AND (created_at, id) < (\(before.date), \(before.id))" }
        return try await tx.query(
            "SELECT * FROM \(T.emailDeliveries) WHERE site_id = \(siteId)\(filters) ORDER BY created_at DESC, id DESC LIMIT \(limit)"
        ).map(decodeDelivery)
    }

    /// Emails a site sent since `since`, and the earliest of them (when the window frees a place).
    func sentSince(siteId: UUID, since: Date, in tx: any SQLExecutor) async throws -> (count: Int, earliest: Date?) {
        let row = try await tx.queryFirst(
            "SELECT COUNT(*) AS n, MIN(sent_at) AS earliest FROM \(T.emailDeliveries) WHERE site_id = \(siteId) AND sent_at >= \(since)"
        )
        return (try row?.get("n") ?? 0, try row?.get("earliest", as: Date?.self))
    }

    func markSent(_ id: UUID, providerMessageId: String?, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.emailDeliveries) SET status = 'sent', attempts = attempts + 1, sent_at = \(now), next_attempt_at = NULL,
                provider_message_id = \(providerMessageId), last_error = NULL
            WHERE id = \(id)
            """
        )
    }

    /// An attempt that failed and will be retried at `next` (`attempted`: whether a send was tried, or only deferred).
    func markRetry(_ id: UUID, error: String, next: Date, attempted: Bool, in tx: any SQLExecutor) async throws {
        let increment: SQL = attempted ? "attempts + 1" : "attempts"
        try await tx.execute(
            "UPDATE \(T.emailDeliveries) SET attempts = \(increment), next_attempt_at = \(next), last_error = \(error) WHERE id = \(id)"
        )
    }

    /// Ends a delivery without sending: `failed` after an attempt, `skipped` when it was not worth trying.
    func markEnded(_ id: UUID, status: String, error: String, attempted: Bool, in tx: any SQLExecutor) async throws {
        let increment: SQL = attempted ? "attempts + 1" : "attempts"
        try await tx.execute(
            """
            UPDATE \(T.emailDeliveries) SET status = \(status), attempts = \(increment), next_attempt_at = NULL, last_error = \(error)
            WHERE id = \(id)
            """
        )
    }

    func decodeDelivery(_ row: SQLRow) throws -> EmailDelivery {
        EmailDelivery(
            id: try row.get("id"), siteId: try row.get("site_id"), notificationId: try row.get("notification_id"),
            activityId: try row.get("activity_id"), recipientId: try row.get("recipient_id"), subject: try row.get("subject"),
            body: try row.get("body"), status: try row.get("status"), attempts: try row.get("attempts"),
            nextAttemptAt: try row.get("next_attempt_at"), lastError: try row.get("last_error"),
            providerMessageId: try row.get("provider_message_id"), createdAt: try row.get("created_at"), sentAt: try row.get("sent_at")
        )
    }

    // MARK: Queue

    func enqueue(_ deliveryId: UUID, organizationId: UUID, at date: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.emailQueue) (delivery_id, organization_id, next_attempt_at) VALUES (\(deliveryId), \(organizationId), \(date))
            ON CONFLICT (delivery_id) DO UPDATE SET next_attempt_at = excluded.next_attempt_at, lease_until = NULL
            """
        )
    }

    /// Leases up to `limit` due deliveries for two minutes (outside any tenant: the queue holds ids and times only).
    func claimDue(now: Date, limit: Int, in tx: any SQLExecutor) async throws -> [(deliveryId: UUID, organizationId: UUID)] {
        try await tx.query(
            """
            UPDATE \(T.emailQueue) SET lease_until = \(now.addingTimeInterval(120))
            WHERE delivery_id IN (
                SELECT delivery_id FROM \(T.emailQueue)
                WHERE next_attempt_at <= \(now) AND (lease_until IS NULL OR lease_until < \(now))
                ORDER BY next_attempt_at LIMIT \(limit))
            RETURNING delivery_id, organization_id
            """
        ).map { (try $0.get("delivery_id", as: UUID.self), try $0.get("organization_id", as: UUID.self)) }
    }

    func dequeue(_ deliveryId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.emailQueue) WHERE delivery_id = \(deliveryId)")
    }
}
